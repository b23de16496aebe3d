"""Principals and their namespace memberships (API tokens: ``tokens``)."""

from __future__ import annotations

from fastapi import Request, status

from registry.api.deps import ActorDep, SessionDep, WriteContext, WriteDep
from registry.api.pagination import Page, decode_name_token
from registry.api.params import PrincipalPath
from registry.api.routes._common import PageDep, authenticated_router, responses
from registry.deployments.service import signal_routing_change
from registry.errors import (
    BadRequest,
    InvalidName,
    InvalidPageToken,
    LastAdmin,
    NamespaceNotFound,
    PolicyDenied,
    PrincipalExists,
    PrincipalNotFound,
)
from registry.principals import lifecycle
from registry.principals import service as admin
from registry.principals.schemas import (
    MembershipAdd,
    MembershipRemove,
    PrincipalCreate,
    PrincipalRead,
    RoleChange,
)

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


@router.post(
    "/principals/{name}/namespaces/remove",
    response_model=PrincipalRead,
    responses=responses(InvalidName, PrincipalNotFound, NamespaceNotFound, PolicyDenied),
)
def remove_memberships(
    name: PrincipalPath, body: MembershipRemove, ctx: WriteDep, request: Request
) -> object:
    """Remove namespace memberships from a principal (admin; a namespace it is no member of is
    skipped). Takes effect on the principal's next request."""

    def produce() -> PrincipalRead:
        view, changed = lifecycle.remove_memberships(
            ctx.session, actor=ctx.actor, name=name, namespaces=body.namespaces
        )
        _access_changed(ctx, request, changed)
        return _principal_read(view)

    return ctx.idempotent(body, produce)


@router.post(
    "/principals/{name}/role",
    response_model=PrincipalRead,
    responses=responses(InvalidName, PrincipalNotFound, PolicyDenied, LastAdmin),
)
def change_role(name: PrincipalPath, body: RoleChange, ctx: WriteDep, request: Request) -> object:
    """Give a principal another role (admin); it applies from the principal's next request.
    The last enabled admin keeps its role (409 ``last_admin``)."""

    def produce() -> PrincipalRead:
        view, changed = lifecycle.set_role(ctx.session, actor=ctx.actor, name=name, role=body.role)
        _access_changed(ctx, request, changed)
        return _principal_read(view)

    return ctx.idempotent(body, produce)


@router.post(
    "/principals/{name}/disable",
    response_model=PrincipalRead,
    responses=responses(InvalidName, PrincipalNotFound, PolicyDenied, LastAdmin),
)
def disable_principal(name: PrincipalPath, ctx: WriteDep, request: Request) -> object:
    """Disable a principal (admin): every token of it is refused from the next request on
    (401 ``unauthenticated``), on every replica; its tokens are kept for ``enable``. The last
    enabled admin cannot be disabled (409 ``last_admin``)."""

    def produce() -> PrincipalRead:
        view, changed = lifecycle.set_disabled(
            ctx.session, actor=ctx.actor, name=name, disabled=True
        )
        _access_changed(ctx, request, changed)
        return _principal_read(view)

    return ctx.idempotent(None, produce)


@router.post(
    "/principals/{name}/enable",
    response_model=PrincipalRead,
    responses=responses(InvalidName, PrincipalNotFound, PolicyDenied),
)
def enable_principal(name: PrincipalPath, ctx: WriteDep) -> object:
    """Enable a disabled principal (admin): its unexpired, unrevoked tokens work again."""
    return ctx.idempotent(
        None,
        lambda: _principal_read(
            lifecycle.set_disabled(ctx.session, actor=ctx.actor, name=name, disabled=False)[0]
        ),
    )


# The routing NOTIFY's payload for a change of access (deployment names never contain ':').
ACCESS_SIGNAL = "access:principals"


def _access_changed(ctx: WriteContext, request: Request, changed: bool) -> None:
    """After a change of access: this replica drops what it cached per caller at once, every
    replica (this one included) when the bumped routing epoch commits
    (``registry.principals.lifecycle``)."""
    if not changed:
        return
    signal_routing_change(ctx.session, ACCESS_SIGNAL)
    request.app.state.token_cache.clear()
    request.app.state.resolve_guard.clear()
