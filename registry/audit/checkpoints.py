"""Signed checkpoints of the audit chain, exported to the artifact store.

A checkpoint anchors the chain's head outside the database: the store object
``audit/checkpoints/<seq, zero-padded to 20 digits>.json`` (under the store's ``meta/`` space,
which gc never touches) holds the canonical JSON of::

    {"at": "2026-01-02T03:04:05.000000Z", "hash": "<64 hex>", "key_id": "<16 hex>",
     "public_key": "<64 hex, raw Ed25519>", "seq": 42, "signature": "<128 hex>"}

``signature`` is Ed25519 over ``canonical_json({"seq", "hash", "at", "key_id"})``. With
checkpoints, deleting the newest events (and rewinding ``audit_head``) is detected: the
database head falls behind the last checkpoint. Without one it is not (security.md §4.3).

Before signing, export checks that the head row agrees with the event it names and, when the
previous checkpoint is known, that the chain from it to the head is intact; a broken chain is
never signed (``audit_chain_broken``). Export is idempotent: an existing checkpoint for the
head's seq is returned as is (and must name the same hash).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session

from registry.audit import canonical, chain, keys, service
from registry.audit.repository import AuditRepository
from registry.db.base import utcnow
from registry.db.session import Sessions, unit_of_work
from registry.errors import AuditChainBroken, BlobNotFound
from registry.storage.base import ArtifactStore

logger = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "audit/checkpoints/"
SEQ_WIDTH = 20
_FIELDS = {"seq", "hash", "at", "key_id", "public_key", "signature"}


def checkpoint_name(seq: int) -> str:
    """Store name of the checkpoint at ``seq``: ``audit/checkpoints/<20-digit seq>.json``."""
    return f"{CHECKPOINT_PREFIX}{seq:0{SEQ_WIDTH}d}.json"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    hash: str
    at: datetime
    key_id: str
    public_key: str  # raw Ed25519 public key, hex
    signature: str  # hex

    @property
    def name(self) -> str:
        return checkpoint_name(self.seq)

    def signed_bytes(self) -> bytes:
        """What the signature covers: canonical JSON of seq, hash, at and key_id."""
        return signed_bytes(seq=self.seq, hash=self.hash, at=self.at, key_id=self.key_id)

    def to_json(self) -> bytes:
        return canonical.canonical_json(
            {
                "seq": self.seq,
                "hash": self.hash,
                "at": self.at,
                "key_id": self.key_id,
                "public_key": self.public_key,
                "signature": self.signature,
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> Checkpoint:
        """Parse a stored checkpoint; ValueError if it is not exactly the format above."""
        doc: Any = json.loads(data.decode("utf-8"))
        if not isinstance(doc, dict) or set(doc) != _FIELDS:
            raise ValueError(f"checkpoint fields must be exactly {sorted(_FIELDS)}")
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
        )

    def signature_problem(self, trusted: dict[str, bytes]) -> str | None:
        """None if signed by a trusted key (``{key_id: raw public key}``), else the reason:
        ``checkpoint_key_unknown`` (key id or public key not the configured one) or
        ``checkpoint_signature_invalid``."""
        raw = trusted.get(self.key_id)
        if raw is None or self.public_key != raw.hex():
            return "checkpoint_key_unknown"
        try:
            keys.public_key_from_hex(self.public_key).verify(
                bytes.fromhex(self.signature), self.signed_bytes()
            )
        except (InvalidSignature, ValueError):
            return "checkpoint_signature_invalid"
        return None


def signed_bytes(*, seq: int, hash: str, at: datetime, key_id: str) -> bytes:
    return canonical.canonical_json({"seq": seq, "hash": hash, "at": at, "key_id": key_id})


def sign_checkpoint(key: Ed25519PrivateKey, *, seq: int, hash: str, at: datetime) -> Checkpoint:
    public = key.public_key()
    kid = keys.key_id(public)
    signature = key.sign(signed_bytes(seq=seq, hash=hash, at=at, key_id=kid))
    return Checkpoint(
        seq=seq,
        hash=canonical.check_hash(hash),
        at=at,
        key_id=kid,
        public_key=keys.raw_public_key(public).hex(),
        signature=signature.hex(),
    )


def latest_checkpoint(store: ArtifactStore) -> Checkpoint | None:
    """The stored checkpoint with the highest seq (None if there is none)."""
    names = store.list_objects(CHECKPOINT_PREFIX)
    return Checkpoint.from_json(store.get_object(names[-1])) if names else None


def _broken(message: str, **context: object) -> AuditChainBroken:
    return AuditChainBroken(message, context=dict(context))


def _check_before_signing(
    session: Session, head: service.ChainHead, previous: Checkpoint | None
) -> None:
    repo = AuditRepository(session)
    if repo.hash_at(head.seq) != head.hash:
        raise _broken("audit_head does not match the event it names", seq=head.seq)
    if previous is None:
        return
    if previous.seq > head.seq:
        raise _broken(
            "the database head is behind the last checkpoint",
            reason=chain.TRUNCATED,
            head_seq=head.seq,
            checkpoint_seq=previous.seq,
        )
    if repo.hash_at(previous.seq) != previous.hash:
        raise _broken("the event at the last checkpoint changed", seq=previous.seq)
    stretch = chain.walk(session, upto=head.seq, after_seq=previous.seq, prev_hash=previous.hash)
    if not stretch.ok:
        raise _broken(
            "the audit chain is broken since the last checkpoint",
            reason=stretch.reason,
            first_bad_seq=stretch.bad_seq,
        )


def export_checkpoint(
    session: Session,
    store: ArtifactStore,
    key: Ed25519PrivateKey,
    *,
    previous: Checkpoint | None = None,
) -> Checkpoint | None:
    """Sign the current head and write it to ``store``; None (nothing written) with 0 events.

    ``previous`` (the last checkpoint exported, if known) makes export verify the stretch of
    chain since then before signing. Raises ``audit_chain_broken`` instead of signing a head
    that is inconsistent.
    """
    head = service.head(session)
    if head.seq == 0:
        return None
    name = checkpoint_name(head.seq)
    try:
        data = store.get_object(name)
    except BlobNotFound:
        data = None
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
    _check_before_signing(session, head, previous)
    checkpoint = sign_checkpoint(key, seq=head.seq, hash=head.hash, at=utcnow())
    store.put_object(name, checkpoint.to_json())
    logger.info("audit checkpoint %s (seq %d, key %s)", name, head.seq, checkpoint.key_id)
    return checkpoint


class Checkpointer:
    """Exports a checkpoint every ``interval_s`` when the head moved (a daemon thread).

    Each round opens its own unit of work on ``sessions.read``: export only reads the database,
    and on SQLite a write session (``BEGIN IMMEDIATE``) would hold the database's write lock
    across the object-store PUT. Errors are logged and the thread carries on; :meth:`stop`
    ends it within one round.
    """

    def __init__(
        self,
        sessions: Sessions,
        store: ArtifactStore,
        key: Ed25519PrivateKey,
        *,
        interval_s: float,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self._sessions = sessions
        self._store = store
        self._key = key
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._last: Checkpoint | None = None
        self._loaded = False

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
            if self._last is not None and service.head(session).seq == self._last.seq:
                return None
            checkpoint = export_checkpoint(session, self._store, self._key, previous=self._last)
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

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopping.wait(self._interval_s):
            try:
                self.run_once()
            except Exception:
                logger.exception("audit checkpoint export failed")
