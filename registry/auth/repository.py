"""Queries for principals and API tokens."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from registry.auth.models import ApiToken, Principal, PrincipalNamespace
from registry.catalog.models import Namespace


class PrincipalRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_by_id(self, principal_id: uuid.UUID) -> Principal | None:
        return self.session.get(Principal, principal_id)

    def get_by_name(self, name: str) -> Principal | None:
        return self.session.scalars(select(Principal).where(Principal.name == name)).one_or_none()

    def any_with_role(self, role: str) -> bool:
        stmt = select(Principal.id).where(Principal.role == role).limit(1)
        return self.session.scalars(stmt).first() is not None

    def add(self, principal: Principal) -> Principal:
        self.session.add(principal)
        self.session.flush()
        return principal


class TokenRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_with_principal(self, token_hash: str) -> tuple[ApiToken, Principal] | None:
        """The token row and its principal for a token hash, or None (one indexed join)."""
        stmt = (
            select(ApiToken, Principal)
            .join(Principal, Principal.id == ApiToken.principal_id)
            .where(ApiToken.token_hash == token_hash)
        )
        row = self.session.execute(stmt).one_or_none()
        return None if row is None else (row[0], row[1])

    def add(self, token: ApiToken) -> ApiToken:
        self.session.add(token)
        self.session.flush()
        return token


@dataclass(frozen=True, slots=True)
class PrincipalAttributes:
    name: str
    kind: str
    role: str
    ci_identity: str | None
    namespaces: tuple[str, ...]


# Built once: this runs on every authorized request, and building a select() costs more in
# Python than SQLite takes to run it (the compiled form is cached by SQLAlchemy either way).
_CURRENT_ATTRIBUTES = (
    select(
        Principal.name,
        Principal.kind,
        Principal.role,
        Principal.ci_identity,
        Principal.disabled_at,
        Namespace.name,
    )
    .select_from(Principal)
    .outerjoin(PrincipalNamespace, PrincipalNamespace.principal_id == Principal.id)
    .outerjoin(Namespace, Namespace.id == PrincipalNamespace.namespace_id)
    .where(Principal.id == bindparam("principal_id"))
)


def current_attributes(session: Session, principal_id: uuid.UUID) -> PrincipalAttributes | None:
    """Role, kind, CI login and memberships of an enabled principal in one round trip. This runs
    on every authorized request, so on the session's connection: no ORM execution layer (and so
    no autoflush: it reads what is committed or flushed)."""
    params = {"principal_id": principal_id}
    rows = session.connection().execute(_CURRENT_ATTRIBUTES, params).all()
    if not rows or rows[0][4] is not None:
        return None
    first = rows[0]
    names = tuple(sorted(r[5] for r in rows if r[5] is not None))
    return PrincipalAttributes(first[0], first[1], first[2], first[3], names)


def namespace_names(session: Session, principal_id: uuid.UUID) -> list[str]:
    """Names of the namespaces a principal is a member of."""
    return memberships(session, [principal_id])[principal_id]


def memberships(session: Session, principal_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    """Each principal's namespace names, sorted, in one query (a listing page's worth)."""
    out: dict[uuid.UUID, list[str]] = {i: [] for i in principal_ids}
    if not out:
        return out
    stmt = (
        select(PrincipalNamespace.principal_id, Namespace.name)
        .join(Namespace, Namespace.id == PrincipalNamespace.namespace_id)
        .where(PrincipalNamespace.principal_id.in_(list(out)))
        .order_by(Namespace.name)
    )
    for principal_id, name in session.execute(stmt):
        out[principal_id].append(name)
    return out
