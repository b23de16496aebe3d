"""Checkpoints on the record: each new signed checkpoint is an audit event of its own
(``audit.checkpoint``), so webhook subscribers hear of it (event ``audit.checkpoint_created``)
and the log says when each checkpoint was made, with which key.

The event moves the head past the checkpoint it records. The periodic checkpointer therefore
does not checkpoint a head whose only news since its last checkpoint is that checkpoint's own
event (:func:`only_its_own_event`): no endless round of checkpoints recording checkpoints; the
event is covered by the next checkpoint made for other news.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.audit import service
from registry.audit.models import AuditEvent
from registry.audit.service import AuditEntry

ACTION = "audit.checkpoint"


def resource(seq: int) -> str:
    return f"audit-checkpoint:{seq}"


def record(session: Session, summary: dict[str, object], *, actor: str | None = None) -> None:
    """Append the event of a checkpoint just exported (in ``session``'s transaction);
    ``summary`` is its seq, hash, key id, time and store name."""
    seq = summary["seq"]
    assert isinstance(seq, int)
    service.append(
        session, AuditEntry(action=ACTION, resource=resource(seq), actor=actor, after=summary)
    )


def only_its_own_event(session: Session, last_seq: int, head_seq: int) -> bool:
    """True when the one event after checkpoint ``last_seq`` is that checkpoint's event."""
    if head_seq != last_seq + 1:
        return False
    event = session.execute(
        select(AuditEvent.action, AuditEvent.resource).where(AuditEvent.seq == head_seq)
    ).first()
    return event is not None and tuple(event) == (ACTION, resource(last_seq))
