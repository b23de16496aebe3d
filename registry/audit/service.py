"""Append to and read the audit log; always inside the caller's transaction.

``append`` is called by services in the same transaction as the change it records (STYLE.md
§3.4): it locks the ``audit_head`` row (``SELECT ... FOR UPDATE``; on SQLite the writer's
``BEGIN IMMEDIATE`` already serialises), computes the next event from the head, flushes the
caller's pending changes, then inserts the event and moves the head with two Core statements
(no ORM unit of work for the chain's rows). It never commits. Two transactions can therefore
never fork the chain: the second waits for the first's commit and then sees its head. If the
caller rolls back, the event and the head move vanish together.

The head lock is held from ``append`` until the caller's commit, and every audited write takes
it: call ``append`` as the last step before the commit (after slow work such as validation or
storage calls), or all audited writers queue behind the slowest one.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, insert, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from registry.audit import canonical
from registry.audit.models import AuditEvent, AuditHead
from registry.audit.repository import AuditRepository
from registry.db.base import utcnow
from registry.errors import BadRequest

MAX_LOG_LIMIT = 1000
# Column widths of audit_events (SQLite does not enforce them; PostgreSQL would fail the flush).
_EVENTS = cast(Table, AuditEvent.__table__)
_HEAD = cast(Table, AuditHead.__table__)
_LIMITS = {"actor": 128, "action": 128, "resource": 512, "request_id": 128}


@dataclass(frozen=True)
class AuditEntry:
    """What a service asks to record. ``decision`` is ``{"allowed", "policies", "action"}``;
    ``before``/``after`` are small JSON summaries of the change (no secrets, no blobs)."""

    action: str
    resource: str
    actor: str | None = None
    actor_id: uuid.UUID | None = None
    decision: Mapping[str, object] | None = None
    before: Mapping[str, object] | None = None
    after: Mapping[str, object] | None = None
    request_id: str | None = None

    def __post_init__(self) -> None:
        if not self.action or not self.resource:
            raise ValueError("audit entries need an action and a resource")
        for name, limit in _LIMITS.items():
            value = getattr(self, name)
            if value is not None and len(value) > limit:
                raise ValueError(f"audit entry {name} longer than {limit} characters")


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The last event's seq and hash (seq 0 and 64 zeros for an empty log)."""

    seq: int
    hash: str


class AuditHeadMissing(RuntimeError):
    """The ``audit_head`` row is missing: the database was not migrated (or was tampered)."""


def append(session: Session, entry: AuditEntry, *, at: datetime | None = None) -> AuditEvent:
    """Append ``entry`` as the next event of the chain; flushes, never commits.

    ``at`` defaults to now, read after the head lock is held, so timestamps follow seq order
    as far as the clock does. Payloads are stored normalised (:func:`canonical.to_json_value`),
    exactly as they are hashed. Returns the event written (a transient object: not in the
    session).
    """
    repo = AuditRepository(session)
    head = repo.head(for_update=True)
    if head is None:
        raise AuditHeadMissing("audit_head row missing; run `adapter-registry db upgrade`")
    when = at if at is not None else utcnow()
    canonical.format_timestamp(when)  # refuses naive datetimes before anything is written
    values = {
        "seq": head.seq + 1,
        "at": when,
        "actor": canonical.to_json_value(entry.actor),
        "actor_id": entry.actor_id,
        "action": canonical.to_json_value(entry.action),
        "resource": canonical.to_json_value(entry.resource),
        "decision": canonical.to_json_value(entry.decision),
        "before": canonical.to_json_value(entry.before),
        "after": canonical.to_json_value(entry.after),
        "request_id": canonical.to_json_value(entry.request_id),
    }
    digest = canonical.chain_hash(head.hash, canonical.event_document(**values))
    row = {**values, "prev_hash": head.hash, "hash": digest}
    session.flush()  # the caller's pending changes first, as an ORM add's flush would
    # Core statements, no unit of work: the event row and the head move, one round trip each.
    session.execute(insert(_EVENTS).values(row))
    session.execute(update(_HEAD).where(_HEAD.c.id == head.id).values(seq=row["seq"], hash=digest))
    set_committed_value(head, "seq", row["seq"])
    set_committed_value(head, "hash", digest)
    return AuditEvent(**row)  # transient: what was written, for the caller to read


def head(session: Session) -> ChainHead:
    """The current head as this transaction sees it (no lock)."""
    row = AuditRepository(session).head()
    if row is None:
        raise AuditHeadMissing("audit_head row missing; run `adapter-registry db upgrade`")
    return ChainHead(seq=row.seq, hash=row.hash)


def log(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    resource: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_seq: int | None = None,
    limit: int = 50,
) -> list[AuditEvent]:
    """Events in seq order, filtered; page with ``after_seq`` = the last seq seen (keyset).

    ``actor`` matches exactly (principal name); ``action`` and ``resource`` are prefixes
    (``"adapter."``, ``"adapter:acme/"``; ``%`` and ``_`` match literally). ``since`` is
    inclusive, ``until`` exclusive.
    """
    if not 1 <= limit <= MAX_LOG_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LOG_LIMIT}", context={"limit": limit})
    return AuditRepository(session).search(
        actor=actor,
        action=action,
        resource=resource,
        since=since,
        until=until,
        after_seq=after_seq,
        limit=limit,
    )
