"""Principals and their namespace memberships (API tokens: ``tokens``)."""

from __future__ import annotations

from fastapi import status

from registry.api.deps import ActorDep, SessionDep, WriteDep
from registry.api.pagination import Page, decode_name_token
from registry.api.params import PrincipalPath
from registry.api.routes._common import PageDep, authenticated_router, responses
from registry.errors import (
    BadRequest,
    InvalidName,
    InvalidPageToken,
    NamespaceNotFound,
    PolicyDenied,
    PrincipalExists,
    PrincipalNotFound,
)
from registry.principals import service as admin
from registry.principals.schemas import MembershipAdd, PrincipalCreate, PrincipalRead

router = authenticated_router(prefix="/api/v1", tags=["principals"])


def _principal_read(view: admin.PrincipalView) -> PrincipalRead:
    p = view.principal
    return PrincipalRead(
        id=p.id,
        name=p.name,
        kind=p.kind,
        role=p.role,
        namespaces=view.namespaces,
        ci_identity=p.ci_identity,
        created_at=p.created_at,
        disabled=p.disabled_at is not None,
    )


@router.post(
    "/principals",
    status_code=status.HTTP_201_CREATED,
    response_model=PrincipalRead,
    responses=responses(InvalidName, PrincipalExists, NamespaceNotFound, PolicyDenied, BadRequest),
)
def create_principal(body: PrincipalCreate, ctx: WriteDep) -> object:
    """Create a human or service principal with a role and namespace memberships (admin)."""
    return ctx.idempotent(
        body,
        lambda: _principal_read(
            admin.create_principal(
                ctx.session,
                actor=ctx.actor,
                name=body.name,
                role=body.role,
                kind=body.kind,
                namespaces=body.namespaces,
                ci_identity=body.ci_identity,
            )
        ),
        status_code=201,
    )


@router.get(
    "/principals",
    response_model=Page[PrincipalRead],
    responses=responses(InvalidPageToken, PolicyDenied),
)
def list_principals(actor: ActorDep, session: SessionDep, page: PageDep) -> Page[PrincipalRead]:
    """Principals by name (admin)."""
    rows = admin.list_principals(
        session, actor=actor, after=decode_name_token(page.token), limit=page.fetch
    )
    return page.of(rows, _principal_read, key=lambda p: [p.name])


@router.post(
    "/principals/{name}/namespaces",
    response_model=PrincipalRead,
    responses=responses(InvalidName, PrincipalNotFound, NamespaceNotFound, PolicyDenied),
)
def add_memberships(name: PrincipalPath, body: MembershipAdd, ctx: WriteDep) -> object:
    """Add namespace memberships to a principal (admin)."""
    return ctx.idempotent(
        body,
        lambda: _principal_read(
            admin.add_memberships(
                ctx.session, actor=ctx.actor, name=name, namespaces=body.namespaces
            )
        ),
    )
