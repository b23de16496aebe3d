"""Namespaces: create and list."""

from __future__ import annotations

from fastapi import status

from registry.api.deps import ActorDep, SessionDep, WriteDep
from registry.api.pagination import Page, decode_name_token
from registry.api.routes._common import PageDep, authenticated_router, responses
from registry.catalog import namespaces
from registry.catalog.schemas import NamespaceCreate, NamespaceRead
from registry.errors import InvalidName, InvalidPageToken, NamespaceAlreadyExists

router = authenticated_router(prefix="/api/v1/namespaces", tags=["namespaces"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=NamespaceRead,
    responses=responses(InvalidName, NamespaceAlreadyExists),
)
def create_namespace(body: NamespaceCreate, ctx: WriteDep) -> object:
    """Create a namespace (a team or tenant that owns adapters)."""
    return ctx.idempotent(
        body,
        lambda: NamespaceRead.model_validate(
            namespaces.create_namespace(
                ctx.session, actor=ctx.actor, name=body.name, description=body.description
            )
        ),
        status_code=201,
    )


@router.get("", response_model=Page[NamespaceRead], responses=responses(InvalidPageToken))
def list_namespaces(actor: ActorDep, session: SessionDep, page: PageDep) -> Page[NamespaceRead]:
    """Namespaces by name."""
    rows = namespaces.list_namespaces(
        session, actor=actor, after=decode_name_token(page.token), limit=page.fetch
    )
    return page.of(rows, NamespaceRead.model_validate, key=lambda n: [n.name])
