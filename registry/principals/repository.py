"""Queries for administering principals, their namespace memberships and their API tokens."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.auth.models import Principal, PrincipalNamespace
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
