"""Console sessions: sign in with an API token, look a session up per request, sign out.

The cookie holds a 256-bit random key; only its sha256 is stored. A session ends at its token's
expiry or ``console.session_ttl_s`` after sign-in, whichever is first, and at once when its token
is revoked or its principal disabled (checked on every request, as for a bearer token) or on
sign-out. The CSRF token of a session is an HMAC of its key, so nothing else is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from registry.audit import service as audit
from registry.audit.service import AuditEntry
from registry.auth.models import ApiToken
from registry.auth.principal import AuthenticatedPrincipal
from registry.auth.repository import TokenRepository
from registry.auth.service import authenticate, principal_of
from registry.auth.tokens import hash_token, new_token
from registry.console.models import ConsoleSession
from registry.db.session import Sessions, unit_of_work
from registry.errors import Unauthenticated

COOKIE = "ar_console"
SESSION_TOKEN_NAME = "console-session"
"""Name of the API token a console session minted for itself (OIDC sign-in)."""
_KEY_CHARS = 43  # token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A live session: its principal, its row id, and the CSRF token of its forms."""

    principal: AuthenticatedPrincipal
    session_id: str
    csrf: str


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def csrf_token(key: str) -> str:
    """The CSRF token of the session with cookie key ``key`` (an HMAC: not guessable without
    the cookie, which scripts of other origins cannot read)."""
    return hmac.new(key.encode(), b"console-csrf", hashlib.sha256).hexdigest()


def csrf_ok(key: str, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(csrf_token(key), sent)


def sign_in(
    session: Session,
    *,
    token: str,
    ttl_s: int,
    request_id: str | None,
    via: Mapping[str, str] | None = None,
) -> tuple[str, datetime]:
    """Exchange an API token for a session: the cookie key and its expiry (audited; ``via``
    records how the person proved who they are when it was not a pasted token)."""
    principal = authenticate(session, token=token)
    if principal.token_id is None:  # not reachable with an API token; never a session without
        raise Unauthenticated("sign in with an API token")
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=ttl_s)
    if principal.token_expires_at is not None:
        expires = min(expires, principal.token_expires_at)
    key = secrets.token_urlsafe(32)
    row = ConsoleSession(
        key_hash=_hash(key),
        principal_id=principal.id,
        token_id=principal.token_id,
        expires_at=expires,
    )
    session.add(row)
    session.flush()
    audit.append(
        session,
        AuditEntry(
            action="console.sign_in",
            resource=f"console-session:{row.id}",
            actor=principal.name,
            actor_id=principal.id,
            after={"expires_at": expires.isoformat(), **(via or {"via": "token"})},
            request_id=request_id,
        ),
    )
    return key, expires


def sign_in_as(
    session: Session,
    *,
    principal_id: uuid.UUID,
    ttl_s: int,
    request_id: str | None,
    via: Mapping[str, str],
) -> tuple[str, datetime]:
    """A session for a principal whose person signed in elsewhere (OIDC): it gets its own API
    token, never shown to anyone, that lives as long as the session and is revoked with it; so
    a disabled principal, a revoked token and sign-out end it exactly as for a pasted token."""
    token = new_token()
    session.add(
        ApiToken(
            principal_id=principal_id,
            token_hash=hash_token(token),
            name=SESSION_TOKEN_NAME,
            expires_at=datetime.now(UTC) + timedelta(seconds=ttl_s),
        )
    )
    session.flush()
    return sign_in(session, token=token, ttl_s=ttl_s, request_id=request_id, via=via)


def lookup(session: Session, key: str | None) -> SignedIn:
    """The live session of a cookie key, refused as ``unauthenticated`` otherwise."""
    if not key or len(key) != _KEY_CHARS:
        raise Unauthenticated("sign in to the console")
    row = session.scalars(
        select(ConsoleSession).where(ConsoleSession.key_hash == _hash(key))
    ).one_or_none()
    if row is None or row.revoked_at is not None or row.expires_at <= datetime.now(UTC):
        raise Unauthenticated("sign in to the console")
    principal = principal_of(TokenRepository(session).get_by_id_with_principal(row.token_id))
    return SignedIn(principal=principal, session_id=str(row.id), csrf=csrf_token(key))


def sign_out(session: Session, key: str, *, request_id: str | None) -> None:
    """Revoke the live session of ``key`` (audited); ``unauthenticated`` when there is none."""
    signed = lookup(session, key)
    now = datetime.now(UTC)
    token_id = session.scalar(
        update(ConsoleSession)
        .where(ConsoleSession.key_hash == _hash(key))
        .values(revoked_at=now)
        .returning(ConsoleSession.token_id)
    )
    session.execute(  # the session's own token (OIDC sign-in) goes with it
        update(ApiToken)
        .where(ApiToken.id == token_id, ApiToken.name == SESSION_TOKEN_NAME)
        .values(revoked_at=now)
    )
    audit.append(
        session,
        AuditEntry(
            action="console.sign_out",
            resource=f"console-session:{signed.session_id}",
            actor=signed.principal.name,
            actor_id=signed.principal.id,
            request_id=request_id,
        ),
    )


async def guard_cookie(request: Request) -> None:
    """For the request guard: a console POST must come from a live session before its body is
    read (as an API POST must carry a valid token); sign-in is the one exception."""
    sessions: Sessions = request.app.state.sessions
    key = request.cookies.get(COOKIE)

    def check() -> None:
        with unit_of_work(sessions.read) as session:
            lookup(session, key)

    await run_in_threadpool(check)
