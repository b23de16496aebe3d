"""Authentication: API tokens → principals; bootstrap of the first admin."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from registry.audit.service import AuditEntry, append
from registry.auth.cache import TokenCache
from registry.auth.models import ApiToken, Principal, PrincipalKind, Role
from registry.auth.principal import AuthenticatedPrincipal
from registry.auth.repository import PrincipalAttributes, PrincipalRepository, TokenRepository
from registry.auth.repository import current_attributes as repository_attributes
from registry.auth.tokens import hash_token, is_well_formed, new_token
from registry.errors import AdminExists, Unauthenticated


def authenticate(session: Session, *, token: str | None) -> AuthenticatedPrincipal:
    """Resolve a bearer token to its principal.

    Every failure (missing, malformed, unknown, revoked, expired, disabled principal) is the same
    ``unauthenticated`` error so that a caller cannot probe which tokens exist.
    """
    if not token or not is_well_formed(token):
        raise Unauthenticated("a valid API token is required")
    found = TokenRepository(session).get_with_principal(hash_token(token))
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


def issue_token(
    session: Session, *, principal_id: uuid.UUID, name: str = "", ttl_days: int | None = None
) -> str:
    """Create a token for a principal and return it in clear (the only time it is visible).

    Runs inside the caller's transaction; flushes.
    """
    token = new_token()
    expires = datetime.now(UTC) + timedelta(days=ttl_days) if ttl_days else None
    TokenRepository(session).add(
        ApiToken(
            principal_id=principal_id, token_hash=hash_token(token), name=name, expires_at=expires
        )
    )
    return token


def bootstrap_admin(session: Session, *, name: str = "admin") -> str:
    """Create the first admin principal and return its token.

    Refuses (``admin_exists``) when any admin exists, so a second run can't mint a new
    all-powerful token. Runs inside the caller's transaction.
    """
    principals = PrincipalRepository(session)
    if principals.any_with_role(Role.admin):
        raise AdminExists("an admin principal exists already; bootstrap refuses to run twice")
    principal = principals.add(Principal(name=name, kind=PrincipalKind.human, role=Role.admin))
    token = issue_token(session, principal_id=principal.id, name="bootstrap")
    append(
        session,
        AuditEntry(
            action="principal.bootstrap",
            resource=f"principal:{name}",
            actor="system:bootstrap",
            after={"role": Role.admin, "kind": PrincipalKind.human},
        ),
    )
    return token


def current_attributes(session: Session, principal_id: uuid.UUID) -> PrincipalAttributes | None:
    """Role, kind, CI login and namespace memberships as they are now; None when the principal
    is gone or disabled."""
    return repository_attributes(session, principal_id)
