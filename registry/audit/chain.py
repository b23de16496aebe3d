"""Walk a stretch of the hash chain in seq order, in bounded batches, and recompute it.

Shared by :func:`registry.audit.verify.verify` (the whole chain) and checkpoint export (the
stretch since the previous checkpoint). Memory is constant: rows are read ``batch_size`` at a
time as plain rows and only the last seq and hash are kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from registry.audit import canonical
from registry.audit.models import GENESIS_HASH
from registry.audit.repository import AuditRepository

DEFAULT_BATCH = 1000

# Reasons, in the order they are checked for each row.
MISSING_EVENT = "missing_event"  # a seq is absent: the row after the gap is reported
CHAIN_BROKEN = "chain_broken"  # prev_hash differs from the previous row's hash
HASH_MISMATCH = "hash_mismatch"  # the row's content does not hash to its stored hash
TRUNCATED = "truncated"  # rows the head (or a checkpoint) vouches for are gone


@dataclass(frozen=True, slots=True)
class Walk:
    """What a walk saw: ``events`` good rows; ``last_seq``/``last_hash`` of the last good one;
    ``bad_seq``/``reason`` of the first bad one (None when the stretch is intact)."""

    events: int
    last_seq: int
    last_hash: str
    bad_seq: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def walk(
    session: Session,
    *,
    upto: int,
    after_seq: int = 0,
    prev_hash: str = GENESIS_HASH,
    batch_size: int = DEFAULT_BATCH,
    on_event: Callable[[int, bytes], None] | None = None,
) -> Walk:
    """Check the events ``after_seq < seq <= upto`` against ``prev_hash`` (the hash of the event
    at ``after_seq``; the genesis hash for 0).

    Every seq must be present (contiguous), every ``prev_hash`` must be the previous row's
    ``hash`` and every ``hash`` must recompute from the row's content. Missing rows at the end
    (``upto`` is past the last stored row) are ``truncated``. ``on_event(seq, digest)`` is
    called for every good event with the sha256 of its canonical document (its content digest,
    :mod:`registry.audit.syndrome`).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    repo = AuditRepository(session)
    events, last_seq, last_hash = 0, after_seq, prev_hash
    while last_seq < upto:
        rows = repo.rows_after(last_seq, upto=upto, limit=batch_size)
        if not rows:
            break
        for row in rows:
            seq = int(row["seq"])
            reason = None
            document_json: bytes | None = None
            if seq != last_seq + 1:
                reason = MISSING_EVENT
            elif row["prev_hash"] != last_hash:
                reason = CHAIN_BROKEN
            else:
                document = canonical.event_document(
                    seq=seq,
                    at=row["at"],
                    actor=row["actor"],
                    actor_id=row["actor_id"],
                    action=row["action"],
                    resource=row["resource"],
                    decision=row["decision"],
                    before=row["before"],
                    after=row["after"],
                    request_id=row["request_id"],
                )
                try:
                    document_json = canonical.canonical_json(document)
                    recomputed = canonical.chain_hash_of(last_hash, document_json)
                except (TypeError, ValueError):  # content no canonical encoder would write
                    recomputed = None
                if recomputed != row["hash"]:
                    reason = HASH_MISMATCH
            if reason is not None:
                return Walk(events, last_seq, last_hash, bad_seq=seq, reason=reason)
            if on_event is not None and document_json is not None:
                on_event(seq, hashlib.sha256(document_json).digest())
            events, last_seq, last_hash = events + 1, seq, str(row["hash"])
    if last_seq < upto:
        return Walk(events, last_seq, last_hash, bad_seq=last_seq + 1, reason=TRUNCATED)
    return Walk(events, last_seq, last_hash)
