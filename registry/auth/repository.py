"""The queries authentication runs on every request: a token hash to its token and principal,
and a principal's current attributes (role, kind, CI login, memberships) for the policy engine.
Administration of principals and tokens has its own queries (:mod:`registry.principals`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import ColumnElement, String, Uuid, bindparam, column, select, table
from sqlalchemy.orm import Session

from registry.auth.models import ApiToken, Principal, PrincipalNamespace

# The two columns of the catalog's ``namespaces`` table that a membership's name needs, named
# here rather than imported: authentication sits below the catalog (which imports auth for the
# caller's type), and ``principal_namespaces.namespace_id`` already names this table by its
# name in its foreign key. tests/auth checks these columns against the catalog's model.
NAMESPACES = table("namespaces", column("id", Uuid), column("name", String))


class TokenRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_with_principal(self, token_hash: str) -> tuple[ApiToken, Principal] | None:
        """The token row and its principal for a token hash, or None (one indexed join)."""
        return self._one(ApiToken.token_hash == token_hash)

    def get_by_id_with_principal(self, token_id: uuid.UUID) -> tuple[ApiToken, Principal] | None:
        """The token row and its principal for a token id (console sessions), or None."""
        return self._one(ApiToken.id == token_id)

    def _one(self, where: ColumnElement[bool]) -> tuple[ApiToken, Principal] | None:
        stmt = (
            select(ApiToken, Principal)
            .join(Principal, Principal.id == ApiToken.principal_id)
            .where(where)
        )
        row = self.session.execute(stmt).one_or_none()
        return None if row is None else (row[0], row[1])


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
        NAMESPACES.c.name,
    )
    .select_from(Principal)
    .outerjoin(PrincipalNamespace, PrincipalNamespace.principal_id == Principal.id)
    .outerjoin(NAMESPACES, NAMESPACES.c.id == PrincipalNamespace.namespace_id)
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
