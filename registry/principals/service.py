"""Managing principals, their namespace memberships and their API tokens (all audited), and the
bootstrap of the first admin. Checking a token on a request is :mod:`registry.auth`."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import refs
from registry.access.actor import Actor, principal_resource, registry_resource
from registry.audit.service import AuditEntry, append
from registry.auth.models import ApiToken, Principal, PrincipalKind, PrincipalNamespace, Role
from registry.auth.tokens import hash_token, new_token
from registry.catalog.namespaces import get_namespace
from registry.db.keyset import newest_first_after
from registry.errors import (
    AdminExists,
    BadRequest,
    PrincipalExists,
    PrincipalNotFound,
    TokenExceedsParent,
    TokenNotFound,
)
from registry.policy.types import ACTIONS
from registry.principals.attenuation import ATTENUATION_POLICY, UNSET, Unset, attenuate
from registry.principals.repository import PrincipalRepository, memberships, namespace_names

MAX_TOKEN_DAYS = 366
DEFAULT_TOKEN_DAYS = 90


@dataclass(frozen=True)
class PrincipalView:
    principal: Principal
    namespaces: list[str]


@dataclass(frozen=True)
class IssuedToken:
    token: str
    row: ApiToken
    principal: str


def create_principal(
    session: Session,
    *,
    actor: Actor,
    name: str,
    role: str,
    kind: str = PrincipalKind.human,
    namespaces: list[str] | None = None,
    ci_identity: str | None = None,
) -> PrincipalView:
    """Create a human or service principal with a role and namespace memberships."""
    refs.principal_name(name)
    actor.require("manage_principals", registry_resource())
    if role not in {r.value for r in Role}:
        raise BadRequest(
            "unknown role", context={"role": role[:50], "roles": [r.value for r in Role]}
        )
    if kind not in {k.value for k in PrincipalKind}:
        raise BadRequest("unknown principal kind", context={"kind": kind[:50]})
    identity = _ci_identity(ci_identity)
    repo = PrincipalRepository(session)
    if repo.get_by_name(name) is not None:
        raise PrincipalExists("principal exists", context={"principal": name})
    ns_ids = _namespace_ids(session, namespaces or [])
    principal = repo.add(Principal(name=name, kind=kind, role=role, ci_identity=identity))
    session.add_all(
        [PrincipalNamespace(principal_id=principal.id, namespace_id=i) for i in ns_ids.values()]
    )
    session.flush()
    names = sorted(ns_ids)
    actor.audit(
        session,
        "principal.create",
        f"principal:{name}",
        after={"role": role, "kind": kind, "namespaces": names, "ci_identity": identity},
    )
    return PrincipalView(principal, names)


def add_memberships(
    session: Session, *, actor: Actor, name: str, namespaces: list[str]
) -> PrincipalView:
    """Add namespace memberships to a principal (idempotent)."""
    actor.require("manage_principals", registry_resource())
    principal = get_principal(session, name=name)
    current = set(namespace_names(session, principal.id))
    ns_ids = _namespace_ids(session, namespaces)
    added = sorted(set(ns_ids) - current)
    session.add_all(
        [PrincipalNamespace(principal_id=principal.id, namespace_id=ns_ids[n]) for n in added]
    )
    session.flush()
    if added:
        actor.audit(
            session,
            "principal.grant",
            f"principal:{name}",
            before={"namespaces": sorted(current)},
            after={"namespaces": sorted(current | set(added))},
        )
    return PrincipalView(principal, sorted(current | set(added)))


def list_principals(
    session: Session, *, actor: Actor, after: str | None, limit: int
) -> list[PrincipalView]:
    actor.require("manage_principals", registry_resource())
    stmt = select(Principal).order_by(Principal.name).limit(limit)
    if after is not None:
        stmt = stmt.where(Principal.name > after)
    rows = list(session.scalars(stmt))
    names = memberships(session, [p.id for p in rows])
    return [PrincipalView(p, names[p.id]) for p in rows]


def get_principal(session: Session, *, name: str) -> Principal:
    refs.principal_name(name)
    found = PrincipalRepository(session).get_by_name(name)
    if found is None:
        raise PrincipalNotFound("no such principal", context={"principal": name})
    return found


def create_token(
    session: Session,
    *,
    actor: Actor,
    principal: str | None,
    name: str = "",
    ttl_days: int | Unset | None = UNSET,
    scopes: list[str] | Unset | None = UNSET,
) -> IssuedToken:
    """Mint a token for ``principal`` (default: the caller). Only its sha256 is stored.

    The new token never exceeds the calling credential (:mod:`registry.principals.attenuation`):
    omitted ``scopes``/``ttl_days`` inherit the caller's scopes and the 90-day default clamped
    to the caller's expiry; explicit ones beyond them raise ``token_exceeds_parent`` (403,
    recorded as ``authz.denied``). Also ``principal_not_found`` (404, also when the caller may
    not see the principal), ``policy_denied`` and ``bad_request`` (unknown scopes, ttl out of
    range). Runs in the caller's transaction; flushes and appends ``token.create``.
    """
    target = _self(session, actor) if principal is None else get_principal(session, name=principal)
    actor.require(
        "manage_tokens",
        principal_resource(target.id),
        hidden=PrincipalNotFound("no such principal", context={"principal": target.name}),
    )
    if isinstance(ttl_days, int) and not 1 <= ttl_days <= MAX_TOKEN_DAYS:
        raise BadRequest("ttl_days must be between 1 and 366", context={"ttl_days": ttl_days})
    if isinstance(scopes, list):
        unknown = sorted(set(scopes) - set(ACTIONS))
        if unknown or not scopes:
            raise BadRequest(
                "unknown or empty token scopes", context={"unknown": unknown, "actions": ACTIONS}
            )
    try:
        grant = attenuate(
            actor.principal,
            for_self=target.id == actor.id,
            scopes=scopes,
            ttl_days=ttl_days,
            now=datetime.now(UTC),
            default_days=DEFAULT_TOKEN_DAYS,
        )
    except TokenExceedsParent as exc:
        exc.audit_entry = actor.entry(
            "authz.denied",
            f"principal:{target.name}",
            decision={
                "allowed": False,
                "action": "manage_tokens",
                "policies": [ATTENUATION_POLICY],
            },
            after={"reason": exc.context["reason"]},
        )
        raise
    token = new_token()
    row = ApiToken(
        principal_id=target.id,
        token_hash=hash_token(token),
        name=name[:128],
        expires_at=grant.expires_at,
        scopes=grant.scopes,
        ci_identity=grant.ci_identity,
        created_by_id=actor.id,
    )
    session.add(row)
    session.flush()
    actor.audit(
        session,
        "token.create",
        f"token:{row.id}",
        after={
            "principal": target.name,
            "name": row.name,
            "scopes": row.scopes,
            "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        },
    )
    return IssuedToken(token, row, target.name)


def list_tokens(
    session: Session,
    *,
    actor: Actor,
    principal: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> tuple[str, list[ApiToken]]:
    """The principal's name and a page of its tokens, newest first (keyset: ``after`` is the
    ``(created_at, id)`` of the previous page's last token)."""
    target = _self(session, actor) if principal is None else get_principal(session, name=principal)
    actor.require(
        "manage_tokens",
        principal_resource(target.id),
        hidden=PrincipalNotFound("no such principal", context={"principal": target.name}),
    )
    stmt = (
        select(ApiToken)
        .where(ApiToken.principal_id == target.id)
        .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(newest_first_after(ApiToken.created_at, ApiToken.id, after))
    return target.name, list(session.scalars(stmt))


def revoke_token(session: Session, *, actor: Actor, token_id: uuid.UUID) -> tuple[ApiToken, str]:
    """Revoke a token (idempotent); returns it and its principal's name."""
    row = session.get(ApiToken, token_id)
    missing = TokenNotFound("no such token", context={"token": str(token_id)})
    if row is None:
        raise missing
    actor.require("manage_tokens", principal_resource(row.principal_id), hidden=missing)
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        session.flush()
        actor.audit(session, "token.revoke", f"token:{row.id}", after={"revoked": True})
    owner = PrincipalRepository(session).get_by_id(row.principal_id)
    return row, owner.name if owner is not None else str(row.principal_id)


def _self(session: Session, actor: Actor) -> Principal:
    found = PrincipalRepository(session).get_by_id(actor.id)
    if found is None:
        raise PrincipalNotFound("no such principal", context={"principal": actor.name})
    return found


_CI_IDENTITY = re.compile(refs.CI_IDENTITY_PATTERN)


def _namespace_ids(session: Session, names: list[str]) -> dict[str, uuid.UUID]:
    return {n: get_namespace(session, name=n).id for n in names}


def _ci_identity(value: str | None) -> str | None:
    """A CI login (GitHub / GitLab user names are ASCII): printable ASCII once the blanks
    around it are dropped, compared in lower case (``refs.CI_IDENTITY_PATTERN``, documented)."""
    if value is None:
        return None
    if not _CI_IDENTITY.fullmatch(value):
        raise BadRequest("invalid CI identity", context={"ci_identity": value[:128]})
    return value.strip().lower()


def ensure_service_principal(session: Session, *, name: str, namespaces: list[str]) -> Principal:
    """The service principal ``name`` (created with role ``developer`` if missing) with
    memberships of ``namespaces`` added. Refuses a human principal."""
    repo = PrincipalRepository(session)
    principal = repo.get_by_name(name)
    if principal is None:
        principal = repo.add(Principal(name=name, kind=PrincipalKind.service, role=Role.developer))
    elif principal.kind != PrincipalKind.service:
        raise BadRequest(
            "a publisher must be bound to a service principal", context={"principal": name}
        )
    have = set(namespace_names(session, principal.id))
    ids = _namespace_ids(session, sorted(set(namespaces) - have))
    session.add_all(
        [PrincipalNamespace(principal_id=principal.id, namespace_id=i) for i in ids.values()]
    )
    session.flush()
    return principal


def issue_token(
    session: Session, *, principal_id: uuid.UUID, name: str = "", ttl_days: int | None = None
) -> str:
    """Create a token for a principal and return it in clear (the only time it is visible).

    Runs inside the caller's transaction; flushes.
    """
    token = new_token()
    expires = datetime.now(UTC) + timedelta(days=ttl_days) if ttl_days else None
    session.add(
        ApiToken(
            principal_id=principal_id, token_hash=hash_token(token), name=name, expires_at=expires
        )
    )
    session.flush()
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
