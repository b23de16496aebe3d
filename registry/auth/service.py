"""Authentication: API tokens → principals, and a principal's current attributes.

Minting tokens and managing principals (the first admin included) is :mod:`registry.principals`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from registry.auth.cache import TokenCache
from registry.auth.models import ApiToken, Principal
from registry.auth.principal import AuthenticatedPrincipal
from registry.auth.repository import PrincipalAttributes, TokenRepository
from registry.auth.repository import current_attributes as repository_attributes
from registry.auth.tokens import hash_token, is_well_formed
from registry.errors import Unauthenticated


def authenticate(session: Session, *, token: str | None) -> AuthenticatedPrincipal:
    """Resolve a bearer token to its principal.

    Every failure (missing, malformed, unknown, revoked, expired, disabled principal) is the same
    ``unauthenticated`` error so that a caller cannot probe which tokens exist.
    """
    if not token or not is_well_formed(token):
        raise Unauthenticated("a valid API token is required")
    return principal_of(TokenRepository(session).get_with_principal(hash_token(token)))


def principal_of(found: tuple[ApiToken, Principal] | None) -> AuthenticatedPrincipal:
    """The principal of a token row, refused (one ``unauthenticated`` for every reason) when the
    token is unknown, revoked or expired or its principal disabled."""
    if found is None:
        raise Unauthenticated("a valid API token is required")
    row, principal = found
    now = datetime.now(UTC)
    if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        raise Unauthenticated("a valid API token is required")
    if principal.disabled_at is not None:
        raise Unauthenticated("a valid API token is required")
    return AuthenticatedPrincipal(
        id=principal.id,
        name=principal.name,
        kind=principal.kind,
        role=principal.role,
        token_id=row.id,
        token_expires_at=row.expires_at,
        scopes=frozenset(row.scopes) if row.scopes is not None else None,
        ci_identity=row.ci_identity,
    )


def authenticate_cached(
    open_session: Callable[[], AbstractContextManager[Session]],
    cache: TokenCache,
    *,
    token: str | None,
) -> AuthenticatedPrincipal:
    """``authenticate`` behind a short-lived cache; a miss opens its own short session."""
    if not token or not is_well_formed(token):
        raise Unauthenticated("a valid API token is required")
    key = hash_token(token)
    hit = cache.get(key)
    if hit is not None:
        return hit
    with open_session() as session:
        principal = authenticate(session, token=token)
    cache.put(key, principal, principal.token_expires_at)
    return principal


def current_attributes(session: Session, principal_id: uuid.UUID) -> PrincipalAttributes | None:
    """Role, kind, CI login and namespace memberships as they are now; None when the principal
    is gone or disabled."""
    return repository_attributes(session, principal_id)
