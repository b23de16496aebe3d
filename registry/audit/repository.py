"""Queries on the audit tables (SQLAlchemy only; no hashing, no rules)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import RowMapping, select
from sqlalchemy.orm import Session

from registry.audit.models import HEAD_ID, AuditEvent, AuditHead

EVENT_COLUMNS = tuple(AuditEvent.__table__.columns)


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


class AuditRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def head(self, *, for_update: bool = False) -> AuditHead | None:
        stmt = select(AuditHead).where(AuditHead.id == HEAD_ID)
        if for_update:
            # populate_existing: a head already in the identity map must be refreshed with the
            # row as read under the lock, or the next seq would be computed from a stale copy.
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        return self.session.scalars(stmt).one_or_none()

    def add(self, event: AuditEvent) -> AuditEvent:
        self.session.add(event)
        self.session.flush()
        return event

    def search(
        self,
        *,
        actor: str | None,
        action: str | None,
        resource: str | None,
        since: datetime | None,
        until: datetime | None,
        after_seq: int | None,
        limit: int,
    ) -> list[AuditEvent]:
        stmt = select(AuditEvent)
        if actor is not None:
            stmt = stmt.where(AuditEvent.actor == actor)
        if action is not None:
            stmt = stmt.where(AuditEvent.action.like(_like_prefix(action), escape="\\"))
        if resource is not None:
            stmt = stmt.where(AuditEvent.resource.like(_like_prefix(resource), escape="\\"))
        if since is not None:
            stmt = stmt.where(AuditEvent.at >= since)
        if until is not None:
            stmt = stmt.where(AuditEvent.at < until)
        if after_seq is not None:
            stmt = stmt.where(AuditEvent.seq > after_seq)
        return list(self.session.scalars(stmt.order_by(AuditEvent.seq).limit(limit)))

    def rows_after(self, after_seq: int, *, upto: int, limit: int) -> Sequence[RowMapping]:
        """Event rows with ``after_seq < seq <= upto`` in seq order, as plain rows (Core, not
        ORM entities: a long walk must not grow the session's identity map)."""
        stmt = (
            select(*EVENT_COLUMNS)
            .where(AuditEvent.seq > after_seq, AuditEvent.seq <= upto)
            .order_by(AuditEvent.seq)
            .limit(limit)
        )
        return self.session.execute(stmt).mappings().all()

    def hash_at(self, seq: int) -> str | None:
        return self.session.scalars(select(AuditEvent.hash).where(AuditEvent.seq == seq)).first()

    def max_seq(self) -> int:
        """The highest stored seq (0 when empty), whatever the head row says."""
        stmt = select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1)
        return self.session.scalars(stmt).first() or 0
