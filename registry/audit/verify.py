"""Verify the audit log: the whole hash chain, the head row, and every stored checkpoint.

Checks, in order; the first failure is reported as ``reason`` with the ``first_bad_seq``:

1. the events up to the head row's seq, walked in seq order in bounded batches
   (:func:`registry.audit.chain.walk`): ``missing_event`` (a gap; the seq after it is
   reported), ``chain_broken`` (prev_hash is not the previous hash: rows swapped or spliced),
   ``hash_mismatch`` (edited content), ``truncated`` (the head names rows that are gone);
2. the head row's hash is the last event's: ``head_mismatch``;
3. every checkpoint in the store, in seq order: ``checkpoint_malformed``,
   ``checkpoint_key_unknown`` (its key id / public key is not one of ``public_keys``: a
   checkpoint is trusted only if signed by a configured key, never by the key it carries),
   ``checkpoint_signature_invalid``, ``truncated`` (the database's head is behind the
   checkpoint: the newest events were deleted; ``first_bad_seq`` = head seq + 1) and
   ``checkpoint_mismatch`` (the event at the checkpoint's seq has another hash: history was
   rewritten and re-chained).

What this cannot see: deleting the newest events and rewinding ``audit_head`` leaves a
consistent, shorter chain; only a checkpoint taken before the deletion reveals it.

The head is read first and only events up to it are walked, so appends committed while a
verification runs do not make it fail.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.orm import Session

from registry.audit import chain, keys, service
from registry.audit.checkpoints import CHECKPOINT_PREFIX, Checkpoint, checkpoint_name
from registry.audit.repository import AuditRepository
from registry.storage.base import ArtifactStore

HEAD_MISMATCH = "head_mismatch"
CHECKPOINT_MALFORMED = "checkpoint_malformed"
CHECKPOINT_MISMATCH = "checkpoint_mismatch"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """``events``: events verified (all of them when ``ok``); ``checkpoints``: checkpoints
    verified; ``checkpoint``: the store name of the checkpoint that failed, if one did."""

    ok: bool
    events: int
    first_bad_seq: int | None
    reason: str | None
    checkpoints: int
    checkpoint: str | None = None


def verify(
    session: Session,
    store: ArtifactStore,
    *,
    public_keys: Iterable[Ed25519PublicKey],
    batch_size: int = chain.DEFAULT_BATCH,
) -> VerifyResult:
    """Verify the chain in ``session``'s database against the checkpoints in ``store``.

    ``public_keys`` are the checkpoint keys to trust (the configured signing key's public
    key, plus retired ones after a rotation).
    """
    trusted = {keys.key_id(pk): keys.raw_public_key(pk) for pk in public_keys}
    head = service.head(session)
    walked = chain.walk(session, upto=head.seq, batch_size=batch_size)
    if not walked.ok:
        return VerifyResult(False, walked.events, walked.bad_seq, walked.reason, 0)
    if walked.last_hash != head.hash:
        return VerifyResult(False, walked.events, head.seq, HEAD_MISMATCH, 0)

    repo = AuditRepository(session)
    verified = 0

    def failed(seq: int | None, reason: str, name: str) -> VerifyResult:
        return VerifyResult(False, walked.events, seq, reason, verified, checkpoint=name)

    for name in store.list_objects(CHECKPOINT_PREFIX):
        try:
            checkpoint = Checkpoint.from_json(store.get_object(name))
        except ValueError:
            return failed(None, CHECKPOINT_MALFORMED, name)
        if name != checkpoint_name(checkpoint.seq):
            return failed(None, CHECKPOINT_MALFORMED, name)
        problem = checkpoint.signature_problem(trusted)
        if problem is not None:
            return failed(checkpoint.seq, problem, name)
        if checkpoint.seq > head.seq:
            return failed(head.seq + 1, chain.TRUNCATED, name)
        if repo.hash_at(checkpoint.seq) != checkpoint.hash:
            return failed(checkpoint.seq, CHECKPOINT_MISMATCH, name)
        verified += 1
    return VerifyResult(True, walked.events, None, None, verified)
