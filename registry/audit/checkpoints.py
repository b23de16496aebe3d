"""Signed checkpoints of the audit chain, exported to the artifact store.

A checkpoint anchors the chain's head outside the database: the store object
``audit/checkpoints/<seq, zero-padded to 20 digits>.json`` (under the store's ``meta/`` space,
which gc never touches) holds the canonical JSON of::

    {"at": "2026-01-02T03:04:05.000000Z", "hash": "<64 hex>", "key_id": "<16 hex>",
     "public_key": "<64 hex, raw Ed25519>", "segment": {"after": 40, "syndrome": ["<64 hex>",
     ...]}, "seq": 42, "signature": "<128 hex>"}

``signature`` is Ed25519 over ``canonical_json({"seq", "hash", "at", "key_id", "segment"})``.
``segment`` covers the events after the previous checkpoint (``after``) up to ``seq``; its
``syndrome`` lets the verifier name the edited event of a re-chained history
(:mod:`registry.audit.syndrome`). Checkpoints from before segments have no ``segment`` (their
signature covers the other four fields) and still verify. With checkpoints, deleting the
newest events (and rewinding ``audit_head``) is detected: the database head falls behind the
last checkpoint. Without one it is not (security.md §4.3).

Before signing, export checks that the head row agrees with the event it names and walks the
chain from the previous checkpoint (the one passed in, else the newest in the store, else from
the first event) to the head; a broken chain is never signed (``audit_chain_broken``). It
refuses a key rotated out (``audit_key_retired``, :mod:`registry.audit.keyring`) and never
dates a checkpoint before its key's window. Export is idempotent: an existing checkpoint for
the head's seq is returned as is (and must name the same hash).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session

from registry.audit import canonical, chain, checkpoint_events, keyring, keys, service, syndrome
from registry.audit.keyring import KeyWindow
from registry.audit.models import GENESIS_HASH
from registry.audit.repository import AuditRepository
from registry.db.base import utcnow
from registry.db.leader_lock import LeaderLock
from registry.db.session import Sessions, unit_of_work
from registry.errors import AuditChainBroken, BlobNotFound
from registry.storage.base import ArtifactStore

logger = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "audit/checkpoints/"
SEQ_WIDTH = 20
_FIELDS = {"seq", "hash", "at", "key_id", "public_key", "signature"}
_SEGMENT_FIELDS = {"after", "syndrome"}
LEADER_LOCK_KEY = 0x5EED_0C0B  # "this replica runs the checkpointer", any stable 64-bit value

# Reasons a checkpoint's signature is not accepted (see Checkpoint.signature_problem).
KEY_UNKNOWN = "checkpoint_key_unknown"
KEY_OUT_OF_WINDOW = "checkpoint_key_out_of_window"
SIGNATURE_INVALID = "checkpoint_signature_invalid"


def checkpoint_name(seq: int) -> str:
    """Store name of the checkpoint at ``seq``: ``audit/checkpoints/<20-digit seq>.json``."""
    return f"{CHECKPOINT_PREFIX}{seq:0{SEQ_WIDTH}d}.json"


@dataclass(frozen=True, slots=True)
class Segment:
    """The events ``after < seq <= checkpoint seq`` and their syndrome."""

    after: int
    syndrome: tuple[str, ...]

    def to_json_value(self) -> dict[str, Any]:
        return {"after": self.after, "syndrome": list(self.syndrome)}

    @classmethod
    def parse(cls, value: object, seq: int) -> Segment:
        if not isinstance(value, dict) or set(value) != _SEGMENT_FIELDS:
            raise ValueError(f"checkpoint segment fields must be exactly {sorted(_SEGMENT_FIELDS)}")
        after = value["after"]
        if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after < seq:
            raise ValueError("checkpoint segment after must be an integer in [0, seq)")
        return cls(after, tuple(syndrome.check_values(value["syndrome"], seq - after)))


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    hash: str
    at: datetime
    key_id: str
    public_key: str  # raw Ed25519 public key, hex
    signature: str  # hex
    segment: Segment | None = None  # None: a checkpoint from before segments existed

    @property
    def name(self) -> str:
        return checkpoint_name(self.seq)

    def signed_bytes(self) -> bytes:
        """What the signature covers: canonical JSON of seq, hash, at, key_id and segment."""
        return signed_bytes(
            seq=self.seq, hash=self.hash, at=self.at, key_id=self.key_id, segment=self.segment
        )

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {
            "seq": self.seq,
            "hash": self.hash,
            "at": self.at,
            "key_id": self.key_id,
            "public_key": self.public_key,
            "signature": self.signature,
        }
        if self.segment is not None:
            doc["segment"] = self.segment.to_json_value()
        return canonical.canonical_json(doc)

    @classmethod
    def from_json(cls, data: bytes) -> Checkpoint:
        """Parse a stored checkpoint; ValueError if it is not exactly the format above."""
        doc: Any = json.loads(data.decode("utf-8"))
        if not isinstance(doc, dict) or set(doc) - {"segment"} != _FIELDS:
            raise ValueError(f"checkpoint fields must be exactly {sorted(_FIELDS)} (+ segment)")
        seq = doc["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise ValueError("checkpoint seq must be a positive integer")
        if not all(isinstance(doc[f], str) for f in _FIELDS - {"seq"}):
            raise ValueError("checkpoint fields other than seq must be strings")
        at = datetime.fromisoformat(doc["at"])
        if canonical.format_timestamp(at) != doc["at"]:
            raise ValueError("checkpoint at must be RFC 3339 UTC with microseconds")
        return cls(
            seq=seq,
            hash=canonical.check_hash(doc["hash"]),
            at=at,
            key_id=doc["key_id"],
            public_key=doc["public_key"],
            signature=doc["signature"],
            segment=Segment.parse(doc["segment"], seq) if "segment" in doc else None,
        )

    def signature_problem(self, trusted: Mapping[str, KeyWindow]) -> str | None:
        """None if signed by a trusted key within its window (``trusted``:
        :func:`registry.audit.keyring.trusted_windows`), else the reason:
        ``checkpoint_key_unknown`` (key id or public key not a trusted one),
        ``checkpoint_key_out_of_window`` (dated outside the key's window) or
        ``checkpoint_signature_invalid``."""
        window = trusted.get(self.key_id)
        if window is None or self.public_key != window.public_key:
            return KEY_UNKNOWN
        try:
            keys.public_key_from_hex(self.public_key).verify(
                bytes.fromhex(self.signature), self.signed_bytes()
            )
        except (InvalidSignature, ValueError):
            return SIGNATURE_INVALID
        if not window.covers(self.at):
            return KEY_OUT_OF_WINDOW
        return None


def signed_bytes(
    *, seq: int, hash: str, at: datetime, key_id: str, segment: Segment | None = None
) -> bytes:
    doc: dict[str, Any] = {"seq": seq, "hash": hash, "at": at, "key_id": key_id}
    if segment is not None:
        doc["segment"] = segment.to_json_value()
    return canonical.canonical_json(doc)


def sign_checkpoint(
    key: Ed25519PrivateKey,
    *,
    seq: int,
    hash: str,
    at: datetime,
    segment: Segment | None = None,
) -> Checkpoint:
    public = key.public_key()
    kid = keys.key_id(public)
    signature = key.sign(signed_bytes(seq=seq, hash=hash, at=at, key_id=kid, segment=segment))
    return Checkpoint(
        seq=seq,
        hash=canonical.check_hash(hash),
        at=at,
        key_id=kid,
        public_key=keys.raw_public_key(public).hex(),
        signature=signature.hex(),
        segment=segment,
    )


def summary(checkpoint: Checkpoint) -> dict[str, object]:  # its audit event's ``after``
    return {
        "seq": checkpoint.seq,
        "hash": checkpoint.hash,
        "key_id": checkpoint.key_id,
        "at": checkpoint.at.isoformat(),
        "name": checkpoint_name(checkpoint.seq),
    }


def stored(store: ArtifactStore, seq: int) -> bool:
    """Whether a checkpoint of ``seq`` is in the store already (made by another replica)."""
    try:
        store.get_object(checkpoint_name(seq))
    except BlobNotFound:
        return False
    return True


def latest_checkpoint(store: ArtifactStore) -> Checkpoint | None:
    """The stored checkpoint with the highest seq (None if there is none)."""
    names = store.list_objects(CHECKPOINT_PREFIX)
    return Checkpoint.from_json(store.get_object(names[-1])) if names else None


def _broken(message: str, **context: object) -> AuditChainBroken:
    return AuditChainBroken(message, context=dict(context))


def _stored_previous(store: ArtifactStore) -> Checkpoint | None:
    """The newest stored checkpoint, or None (also when it is malformed: export then walks from
    the first event, and verify reports the malformed one)."""
    with contextlib.suppress(ValueError, BlobNotFound):
        return latest_checkpoint(store)
    return None


def _segment(session: Session, head: service.ChainHead, previous: Checkpoint | None) -> Segment:
    """Check the chain since ``previous`` (else since the first event) up to ``head`` and return
    that stretch's segment; raises ``audit_chain_broken`` instead of vouching for a broken one."""
    repo = AuditRepository(session)
    if repo.hash_at(head.seq) != head.hash:
        raise _broken("audit_head does not match the event it names", seq=head.seq)
    after, prev_hash = 0, GENESIS_HASH
    if previous is not None:
        if previous.seq > head.seq:
            raise _broken(
                "the database head is behind the last checkpoint",
                reason=chain.TRUNCATED,
                head_seq=head.seq,
                checkpoint_seq=previous.seq,
            )
        if repo.hash_at(previous.seq) != previous.hash:
            raise _broken("the event at the last checkpoint changed", seq=previous.seq)
        if previous.seq < head.seq:
            after, prev_hash = previous.seq, previous.hash
    acc = syndrome.Syndrome(after)
    stretch = chain.walk(
        session, upto=head.seq, after_seq=after, prev_hash=prev_hash, on_event=acc.add
    )
    if not stretch.ok:
        raise _broken(
            "the audit chain is broken since the last checkpoint",
            reason=stretch.reason,
            first_bad_seq=stretch.bad_seq,
        )
    return Segment(after, tuple(acc.values()))


def export_checkpoint(
    session: Session,
    store: ArtifactStore,
    key: Ed25519PrivateKey,
    *,
    previous: Checkpoint | None = None,
) -> Checkpoint | None:
    """Sign the current head and write it to ``store``; None (nothing written) with 0 events.

    ``previous`` is the last checkpoint exported, if the caller knows it; otherwise the newest
    stored one is used. Export verifies the stretch of chain since then before signing (from the
    first event when there is none: the first checkpoint walks the whole log once) and records
    that stretch's segment. Raises ``audit_chain_broken`` instead of signing a head that is
    inconsistent, ``audit_key_retired`` when ``key`` was rotated out.
    """
    head = service.head(session)
    if head.seq == 0:
        return None
    name = checkpoint_name(head.seq)
    data: bytes | None = None
    with contextlib.suppress(BlobNotFound):
        data = store.get_object(name)
    if data is not None:
        try:
            existing = Checkpoint.from_json(data)
        except ValueError as exc:
            raise _broken("a stored checkpoint is malformed", checkpoint=name) from exc
        if existing.hash != head.hash:
            raise _broken(
                "a checkpoint for this seq names another hash", seq=head.seq, checkpoint=name
            )
        return existing
    start = keyring.signing_start(store, key)
    segment = _segment(session, head, previous or _stored_previous(store))
    # Never dated before the key's window opened (a clock behind the rotating host's).
    at = utcnow() if start is None else max(utcnow(), start)
    checkpoint = sign_checkpoint(key, seq=head.seq, hash=head.hash, at=at, segment=segment)
    store.put_object(name, checkpoint.to_json())
    logger.info("audit checkpoint %s (seq %d, key %s)", name, head.seq, checkpoint.key_id)
    return checkpoint


class Checkpointer:
    """Exports a checkpoint every ``interval_s`` when the head moved (a daemon thread) in the
    process holding ``leader`` (one across replicas and ``serve --workers``; always when None).
    A round reads in its own ``sessions.read`` unit (on SQLite a write session would hold the
    write lock across the store PUT); a new checkpoint's audit event follows in a short write.
    Errors are logged and the thread carries on; :meth:`stop` ends it and releases ``leader``."""

    def __init__(
        self,
        sessions: Sessions,
        store: ArtifactStore,
        key: Ed25519PrivateKey,
        *,
        interval_s: float,
        leader: LeaderLock | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self._sessions, self._store, self._key = sessions, store, key
        self._interval_s, self._leader = interval_s, leader
        self._stopping = threading.Event()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._last: Checkpoint | None = None
        self._loaded = False  # whether _last was read from the store

    @property
    def last(self) -> Checkpoint | None:
        """The last checkpoint this instance exported (or found in the store at start)."""
        return self._last

    def run_once(self) -> Checkpoint | None:
        """One round: export a checkpoint if the head moved since the last one."""
        if not self._loaded:
            found = latest_checkpoint(self._store)
            with self._changed:
                self._last, self._loaded = found, True
                self._changed.notify_all()
        with unit_of_work(self._sessions.read) as session:
            head = service.head(session).seq
            if self._last is not None and (
                head == self._last.seq
                or checkpoint_events.only_its_own_event(session, self._last.seq, head)
            ):
                return None
            new = not stored(self._store, head)
            checkpoint = export_checkpoint(session, self._store, self._key, previous=self._last)
        if checkpoint is not None and new:
            # Its own short write: the export above held no write lock while it hashed.
            with unit_of_work(self._sessions.write) as session:
                checkpoint_events.record(session, summary(checkpoint))
        if checkpoint is not None:
            with self._changed:
                self._last = checkpoint
                self._changed.notify_all()
        return checkpoint

    def wait_for(self, seq: int, timeout_s: float) -> bool:
        """Block until a checkpoint at ``seq`` or later exists (False after ``timeout_s``)."""
        with self._changed:
            return self._changed.wait_for(
                lambda: self._last is not None and self._last.seq >= seq, timeout=timeout_s
            )

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("checkpointer already started")
        self._thread = threading.Thread(target=self._run, name="audit-checkpointer", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Ask the thread to stop and wait (bounded) for it to finish its current round."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                logger.warning("audit checkpointer did not stop within %.0f s", timeout_s)
        if self._leader is not None:
            self._leader.release()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopping.wait(self._interval_s):
            try:
                if self._leader is None or self._leader.hold():
                    self.run_once()
            except Exception:
                logger.exception("audit checkpoint export failed")
