"""Trusted CI publishers (OIDC) and the token exchange."""

from __future__ import annotations

from fastapi import status

from registry.api.deps import ActorDep, PrincipalDep, SessionDep, SettingsDep, WriteDep
from registry.api.pagination import Page, decode_name_token
from registry.api.routes._common import PageDep, authenticated_router, responses
from registry.errors import (
    BadRequest,
    InvalidName,
    InvalidPageToken,
    NamespaceNotFound,
    OidcTokenInvalid,
    OidcTokenReused,
    PolicyDenied,
    PublisherExists,
)
from registry.oidc import service as oidc
from registry.oidc.models import TrustedPublisher
from registry.oidc.schemas import OidcTokenRead, PublisherCreate, PublisherRead

router = authenticated_router(prefix="/api/v1", tags=["publishers"])


def _read(row: TrustedPublisher, principal: str) -> PublisherRead:
    return PublisherRead(
        id=row.id, principal=principal, created_at=row.created_at, **oidc.publisher_summary(row)
    )


@router.post(
    "/publishers",
    status_code=status.HTTP_201_CREATED,
    response_model=PublisherRead,
    responses=responses(InvalidName, PublisherExists, NamespaceNotFound, PolicyDenied, BadRequest),
)
def add_publisher(body: PublisherCreate, ctx: WriteDep) -> object:
    """Bind a CI OIDC issuer + audience + claim constraints to a service principal (admin)."""
    data = oidc.PublisherInput(**body.model_dump())
    return ctx.idempotent(
        body,
        lambda: _read(
            oidc.add_publisher(
                ctx.session,
                actor=ctx.actor,
                data=data,
                allow_insecure_loopback=ctx.settings.oidc.allow_insecure_loopback,
            ),
            body.principal,
        ),
        status_code=201,
    )


@router.get(
    "/publishers",
    response_model=Page[PublisherRead],
    responses=responses(PolicyDenied, InvalidPageToken),
)
def list_publishers(actor: ActorDep, session: SessionDep, page: PageDep) -> Page[PublisherRead]:
    """Trusted publishers by name (admin)."""
    rows = oidc.list_publishers(
        session, actor=actor, after=decode_name_token(page.token), limit=page.fetch
    )
    return page.of(rows, lambda row: _read(*row), key=lambda p: [p.name])


@router.post(
    "/oidc/token",
    status_code=status.HTTP_201_CREATED,
    response_model=OidcTokenRead,
    responses=responses(OidcTokenInvalid, OidcTokenReused, BadRequest),
)
def exchange(principal: PrincipalDep, session: SessionDep, settings: SettingsDep) -> OidcTokenRead:
    """Exchange a CI OIDC token (sent as the bearer token) for a short-lived registry token
    scoped to what CI may do (read, upload, register, record evaluations)."""
    token, row = oidc.mint_token(session, principal=principal, ttl_s=settings.oidc.token_ttl_s)
    assert row.expires_at is not None
    return OidcTokenRead(
        token=token,
        expires_at=row.expires_at,
        principal=principal.name,
        identity=dict(principal.ci_identity or {}),
    )
