"""Verify the audit log: the whole hash chain, the head row, and every stored checkpoint.

Checks, in order; the first failure is reported as ``reason`` with the ``first_bad_seq``:

1. the events up to the head row's seq, walked in seq order in bounded batches
   (:func:`registry.audit.chain.walk`): ``missing_event`` (a gap; the seq after it is
   reported), ``chain_broken`` (prev_hash is not the previous hash: rows swapped or spliced),
   ``hash_mismatch`` (edited content), ``truncated`` (the head names rows that are gone);
2. the head row's hash is the last event's: ``head_mismatch``;
3. every checkpoint in the store, in seq order: ``checkpoint_malformed``,
   ``checkpoint_key_unknown`` (its key is neither one of ``public_keys`` nor vouched for by
   one through the key history, :mod:`registry.audit.keyring`: a checkpoint is never trusted
   by the key it carries), ``checkpoint_signature_invalid``, ``checkpoint_key_out_of_window``
   (signed by a trusted key, but dated outside the time that key was in use),
   ``truncated`` (the database's head is behind the checkpoint: the newest events were
   deleted; ``first_bad_seq`` = head seq + 1) and ``checkpoint_mismatch`` (the event at the
   checkpoint's seq has another hash: history was rewritten and re-chained). For a mismatch,
   ``checkpoint_seq`` names the checkpoint and ``bad_range`` the events that hold the first
   edit: the one edited event when the checkpoint's syndrome pins it down
   (:mod:`registry.audit.syndrome`; then ``first_bad_seq`` is that event), else the events
   after the last checkpoint that still matches (``first_bad_seq`` is the first of them).

With no checkpoint at all the result is ``ok`` with the warning ``no_checkpoints``: nothing
outside the database vouches for the log, so a consistent rewrite (or deleting the newest
events and rewinding ``audit_head``) cannot be seen. ``audit verify --require-checkpoint``
turns that into a failure. Appends after the last checkpoint are vouched for by nothing but
the chain; ``last_checkpoint_seq`` says how far the anchored part reaches.

The head is read first and only events up to it are walked, so appends committed while a
verification runs do not make it fail.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.orm import Session

from registry.audit import chain, keyring, service, syndrome
from registry.audit.checkpoints import CHECKPOINT_PREFIX, Checkpoint, checkpoint_name
from registry.audit.models import GENESIS_HASH
from registry.audit.repository import AuditRepository
from registry.storage.base import ArtifactStore

HEAD_MISMATCH = "head_mismatch"
CHECKPOINT_MALFORMED = "checkpoint_malformed"
CHECKPOINT_MISMATCH = "checkpoint_mismatch"
NO_CHECKPOINTS = "no_checkpoints"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """``events``: events verified (all of them when ``ok``); ``checkpoints``: checkpoints
    verified; ``checkpoint``: the store name of the checkpoint that failed, if one did, and
    ``checkpoint_seq`` its seq; ``bad_range``: for ``checkpoint_mismatch``, the first and last
    seq of the events among which the first edit lies (one event when it was located);
    ``warnings``: ``no_checkpoints`` when nothing anchors the log; ``last_checkpoint_seq``: the
    highest verified checkpoint's seq."""

    ok: bool
    events: int
    first_bad_seq: int | None
    reason: str | None
    checkpoints: int
    checkpoint: str | None = None
    checkpoint_seq: int | None = None
    bad_range: tuple[int, int] | None = None
    warnings: tuple[str, ...] = ()
    last_checkpoint_seq: int | None = None


def verify(
    session: Session,
    store: ArtifactStore,
    *,
    public_keys: Iterable[Ed25519PublicKey],
    batch_size: int = chain.DEFAULT_BATCH,
) -> VerifyResult:
    """Verify the chain in ``session``'s database against the checkpoints in ``store``.

    ``public_keys`` are the keys to trust (the configured signing key's public key); the key
    history in the store extends that trust to the keys they replaced, each for its window.
    Only reads; runs in the caller's transaction.
    """
    trusted = keyring.trusted_windows(store, public_keys)
    head = service.head(session)
    walked = chain.walk(session, upto=head.seq, batch_size=batch_size)
    if not walked.ok:
        return VerifyResult(False, walked.events, walked.bad_seq, walked.reason, 0)
    if walked.last_hash != head.hash:
        return VerifyResult(False, walked.events, head.seq, HEAD_MISMATCH, 0)

    repo = AuditRepository(session)
    verified = 0
    anchored = 0  # the highest seq a verified checkpoint vouches for

    def failed(seq: int | None, reason: str, name: str, cp_seq: int | None) -> VerifyResult:
        return VerifyResult(
            False, walked.events, seq, reason, verified, checkpoint=name, checkpoint_seq=cp_seq
        )

    for name in store.list_objects(CHECKPOINT_PREFIX):
        try:
            checkpoint = Checkpoint.from_json(store.get_object(name))
        except ValueError:
            return failed(None, CHECKPOINT_MALFORMED, name, None)
        if name != checkpoint_name(checkpoint.seq):
            return failed(None, CHECKPOINT_MALFORMED, name, None)
        problem = checkpoint.signature_problem(trusted)
        if problem is not None:
            return failed(checkpoint.seq, problem, name, checkpoint.seq)
        if checkpoint.seq > head.seq:
            return failed(head.seq + 1, chain.TRUNCATED, name, checkpoint.seq)
        if repo.hash_at(checkpoint.seq) != checkpoint.hash:
            low, high = _first_edit(session, checkpoint, anchored, batch_size)
            return VerifyResult(
                False,
                walked.events,
                low,
                CHECKPOINT_MISMATCH,
                verified,
                checkpoint=name,
                checkpoint_seq=checkpoint.seq,
                bad_range=(low, high),
            )
        verified += 1
        anchored = checkpoint.seq
    return VerifyResult(
        True,
        walked.events,
        None,
        None,
        verified,
        warnings=() if verified else (NO_CHECKPOINTS,),
        last_checkpoint_seq=anchored or None,
    )


def _first_edit(
    session: Session, checkpoint: Checkpoint, anchored: int, batch_size: int
) -> tuple[int, int]:
    """The seqs between which the first edit lies: ``(seq, seq)`` when the checkpoint's syndrome
    names the one edited event, else everything after the last matching checkpoint
    (``anchored``) up to this one. The database chain is consistent here (checked before)."""
    span = (anchored + 1, checkpoint.seq)
    segment = checkpoint.segment
    if segment is None or segment.after > anchored:
        return span  # the segment does not cover all that is not vouched for
    prev_hash = GENESIS_HASH
    if segment.after:
        found = AuditRepository(session).hash_at(segment.after)
        if found is None:
            return span
        prev_hash = found
    acc = syndrome.Syndrome(segment.after)
    stretch = chain.walk(
        session,
        upto=checkpoint.seq,
        after_seq=segment.after,
        prev_hash=prev_hash,
        batch_size=batch_size,
        on_event=acc.add,
    )
    if not stretch.ok:
        return span
    seq = syndrome.locate(
        list(segment.syndrome), acc.values(), after=segment.after, count=acc.count
    )
    if seq is None or seq <= anchored:
        return span
    return (seq, seq)
