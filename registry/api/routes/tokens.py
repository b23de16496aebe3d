"""API tokens: mint (never wider than the calling token), list, revoke."""

from __future__ import annotations

import uuid

from fastapi import Request, status

from registry.api.deps import ActorDep, SessionDep, WriteDep
from registry.api.pagination import Page, decode_time_token, page_of, time_key
from registry.api.params import PrincipalQ
from registry.api.routes._common import PageDep, authenticated_router, responses
from registry.auth.models import ApiToken
from registry.errors import (
    BadRequest,
    InvalidPageToken,
    PolicyDenied,
    PrincipalNotFound,
    TokenExceedsParent,
    TokenNotFound,
)
from registry.principals import service as admin
from registry.principals.attenuation import UNSET
from registry.principals.schemas import TokenCreate, TokenIssued, TokenRead

router = authenticated_router(prefix="/api/v1", tags=["principals"])


def _token_read(row: ApiToken, principal: str) -> TokenRead:
    return TokenRead(
        id=row.id,
        principal=principal,
        name=row.name,
        scopes=row.scopes,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        created_at=row.created_at,
    )


@router.post(
    "/tokens",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenIssued,
    responses=responses(PrincipalNotFound, PolicyDenied, TokenExceedsParent, BadRequest),
)
def create_token(body: TokenCreate, ctx: WriteDep) -> object:
    """Mint an API token for yourself, or (admin) for another principal. Shown once.

    The new token never exceeds the calling token: omitted ``scopes``/``ttl_days`` inherit its
    scopes and the 90-day default clamped to its expiry; explicit ones beyond them are refused
    with ``403 token_exceeds_parent``."""
    sent = body.model_fields_set

    def produce() -> TokenIssued:
        issued = admin.create_token(
            ctx.session,
            actor=ctx.actor,
            principal=body.principal,
            name=body.name,
            ttl_days=body.ttl_days if "ttl_days" in sent else UNSET,
            scopes=body.scopes if "scopes" in sent else UNSET,
        )
        read = _token_read(issued.row, issued.principal)
        return TokenIssued(**read.model_dump(), token=issued.token)

    # A retry gets the same token back; the stored copy of the secret is sealed to the caller's
    # credential (idempotency.sealing), so the database never holds it usable.
    return ctx.idempotent(body, produce, status_code=201, secret_fields=("token",))


@router.get(
    "/tokens",
    response_model=Page[TokenRead],
    responses=responses(PrincipalNotFound, PolicyDenied, InvalidPageToken),
)
def list_tokens(
    actor: ActorDep,
    session: SessionDep,
    page: PageDep,
    principal: PrincipalQ = None,
) -> Page[TokenRead]:
    """Tokens of a principal (default: the caller), newest first; never the secrets."""
    name, rows = admin.list_tokens(
        session,
        actor=actor,
        principal=principal,
        after=decode_time_token(page.token),
        limit=page.fetch,
    )
    return page_of(
        rows, page.limit, lambda t: _token_read(t, name), key=lambda t: time_key(t.created_at, t.id)
    )


@router.post(
    "/tokens/{token_id}/revoke",
    response_model=TokenRead,
    responses=responses(TokenNotFound, PolicyDenied),
)
def revoke_token(token_id: uuid.UUID, ctx: WriteDep, request: Request) -> object:
    """Revoke a token (yours, or any as admin); other replicas stop accepting it within the
    token cache lifetime (``REGISTRY_AUTH__TOKEN_CACHE_S``)."""

    def produce() -> TokenRead:
        row, owner = admin.revoke_token(ctx.session, actor=ctx.actor, token_id=token_id)
        request.app.state.token_cache.clear()
        return _token_read(row, owner)

    return ctx.idempotent(None, produce)
