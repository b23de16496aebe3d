"""The history of audit signing keys: which key signed checkpoints when, and key rotation.

Every *retired* key has a record next to the checkpoints, in the artifact store's meta space,
``audit/keys/<key id>.json``, canonical JSON of::

    {"endorsed_by": "<16 hex>", "key_id": "<16 hex>", "not_after": "2026-...Z",
     "not_before": "2026-...Z" | null, "public_key": "<64 hex>", "signature": "<128 hex>"}

``signature`` is Ed25519, by the key ``endorsed_by`` (its successor), over the canonical JSON of
the other five fields. ``audit rotate-key`` (:func:`rotate_signing_key`) writes it: it holds the
configured (old) key and the new one, so the successor vouches for exactly the key that was in
use and for its window, from the retirement of *its* predecessor (``not_before``; null for the
first key) to the rotation (``not_after``).

Trust is anchored in the configured key alone (the running server's): a record counts only if
its endorser is trusted, i.e. is the configured key or a key trusted through an earlier record.
Trust thus runs back along the rotations, and a record written by anyone without a trusted key
(write access to the store is not enough) grants nothing. The configured key's own window
starts where the record it endorsed ends. A checkpoint verifies when its key is trusted, its
public key is that key's and its ``at`` lies in the window ``[not_before, not_after)``: a
retired key that leaks later cannot sign checkpoints dated after its retirement.

A key that is lost or swapped without ``rotate-key`` is vouched for by nobody: the checkpoints
it signed report ``checkpoint_key_unknown``. Back the key up.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from registry.audit import canonical, keys
from registry.db.base import utcnow
from registry.errors import AuditKeyRetired, BlobNotFound
from registry.storage.base import ArtifactStore

logger = logging.getLogger(__name__)

KEYS_PREFIX = "audit/keys/"
_FIELDS = {"key_id", "public_key", "not_before", "not_after", "endorsed_by", "signature"}


def key_record_name(key_id: str) -> str:
    """Store name of a retired key's record: ``audit/keys/<key id>.json``."""
    return f"{KEYS_PREFIX}{key_id}.json"


def _timestamp(value: object, *, nullable: bool) -> datetime | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise ValueError("key record times must be RFC 3339 strings")
    at = datetime.fromisoformat(value)
    if canonical.format_timestamp(at) != value:
        raise ValueError("key record times must be RFC 3339 UTC with microseconds")
    return at


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A retired key, its window, and its successor's signature over both."""

    key_id: str
    public_key: str  # raw Ed25519, hex
    not_before: datetime | None
    not_after: datetime
    endorsed_by: str
    signature: str  # hex

    @property
    def name(self) -> str:
        return key_record_name(self.key_id)

    def signed_bytes(self) -> bytes:
        return canonical.canonical_json(
            {
                "key_id": self.key_id,
                "public_key": self.public_key,
                "not_before": self.not_before,
                "not_after": self.not_after,
                "endorsed_by": self.endorsed_by,
            }
        )

    def to_json(self) -> bytes:
        return canonical.canonical_json(
            {
                "key_id": self.key_id,
                "public_key": self.public_key,
                "not_before": self.not_before,
                "not_after": self.not_after,
                "endorsed_by": self.endorsed_by,
                "signature": self.signature,
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> KeyRecord:
        """Parse a stored record; ValueError unless it is exactly the format above and its key
        id is its public key's."""
        doc: Any = json.loads(data.decode("utf-8"))
        if not isinstance(doc, dict) or set(doc) != _FIELDS:
            raise ValueError(f"key record fields must be exactly {sorted(_FIELDS)}")
        if not all(isinstance(doc[f], str) for f in _FIELDS - {"not_before"}):
            raise ValueError("key record fields other than not_before must be strings")
        not_before = _timestamp(doc["not_before"], nullable=True)
        not_after = _timestamp(doc["not_after"], nullable=False)
        assert not_after is not None
        if not_before is not None and not_before >= not_after:
            raise ValueError("key record window is empty")
        if keys.key_id(keys.public_key_from_hex(doc["public_key"])) != doc["key_id"]:
            raise ValueError("key record key_id is not its public key's")
        return cls(
            key_id=doc["key_id"],
            public_key=doc["public_key"],
            not_before=not_before,
            not_after=not_after,
            endorsed_by=doc["endorsed_by"],
            signature=doc["signature"],
        )

    def signed_by(self, public_key_hex: str) -> bool:
        try:
            keys.public_key_from_hex(public_key_hex).verify(
                bytes.fromhex(self.signature), self.signed_bytes()
            )
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True, slots=True)
class KeyWindow:
    """A trusted key and when it signed: ``[not_before, not_after)``, None = unbounded."""

    key_id: str
    public_key: str  # raw Ed25519, hex
    not_before: datetime | None = None
    not_after: datetime | None = None

    def covers(self, at: datetime) -> bool:
        return (self.not_before is None or at >= self.not_before) and (
            self.not_after is None or at < self.not_after
        )


def endorse(
    successor: Ed25519PrivateKey,
    retired: Ed25519PublicKey,
    *,
    not_before: datetime | None,
    not_after: datetime,
) -> KeyRecord:
    """``successor``'s signed record of ``retired`` and its window."""
    unsigned = KeyRecord(
        key_id=keys.key_id(retired),
        public_key=keys.raw_public_key(retired).hex(),
        not_before=not_before,
        not_after=not_after,
        endorsed_by=keys.key_id(successor.public_key()),
        signature="",
    )
    return replace(unsigned, signature=successor.sign(unsigned.signed_bytes()).hex())


def read_records(store: ArtifactStore) -> list[KeyRecord]:
    """Every well-formed record in the store (malformed ones are logged and grant nothing)."""
    records = []
    for name in store.list_objects(KEYS_PREFIX):
        try:
            record = KeyRecord.from_json(store.get_object(name))
        except (ValueError, BlobNotFound):
            logger.warning("ignoring malformed audit key record %s", name)
            continue
        if record.name != name:
            logger.warning("ignoring audit key record %s stored under another name", name)
            continue
        records.append(record)
    return records


def trusted_windows(
    store: ArtifactStore, anchors: Iterable[Ed25519PublicKey]
) -> dict[str, KeyWindow]:
    """The keys to trust, by key id, with their windows: the ``anchors`` (configured keys) and,
    transitively, every retired key a trusted key endorsed (see the module docstring)."""
    trusted = {
        keys.key_id(a): KeyWindow(keys.key_id(a), keys.raw_public_key(a).hex()) for a in anchors
    }
    anchor_ids = set(trusted)
    pending = read_records(store)
    endorsed: list[KeyRecord] = []
    progress = True
    while progress:  # one pass per rotation step back
        progress = False
        for record in list(pending):
            endorser = trusted.get(record.endorsed_by)
            if record.key_id in trusted or endorser is None:
                continue
            pending.remove(record)
            if record.signed_by(endorser.public_key):
                trusted[record.key_id] = KeyWindow(
                    record.key_id, record.public_key, record.not_before, record.not_after
                )
                endorsed.append(record)
                progress = True
    for record in endorsed:
        if record.endorsed_by in anchor_ids:
            window = trusted[record.endorsed_by]
            start = max(filter(None, [window.not_before, record.not_after]))
            trusted[record.endorsed_by] = replace(window, not_before=start)
    return trusted


def signing_start(store: ArtifactStore, key: Ed25519PrivateKey) -> datetime | None:
    """When ``key``'s window began (the retirement of the key it endorsed; None if it endorsed
    none), checked before each checkpoint is signed. Raises ``audit_key_retired`` when the store
    holds a record of ``key`` itself: it was rotated out and must not sign any more."""
    public = key.public_key()
    kid = keys.key_id(public)
    try:
        own = KeyRecord.from_json(store.get_object(key_record_name(kid)))
    except BlobNotFound:
        own = None
    except ValueError:
        logger.warning("ignoring malformed audit key record %s", key_record_name(kid))
        own = None
    if own is not None:
        raise AuditKeyRetired(
            "this server's audit signing key was retired by `audit rotate-key`; restart it so "
            "that it loads the new key",
            context={"key_id": kid, "retired_at": canonical.format_timestamp(own.not_after)},
        )
    hex_key = keys.raw_public_key(public).hex()
    starts = [
        r.not_after for r in read_records(store) if r.endorsed_by == kid and r.signed_by(hex_key)
    ]
    return max(starts) if starts else None


@dataclass(frozen=True, slots=True)
class Rotation:
    retired: KeyRecord
    new_key_id: str


def rotate_signing_key(
    store: ArtifactStore, path: Path, *, now: datetime | None = None
) -> Rotation:
    """Replace the signing key at ``path`` by a new one that vouches for the old one.

    Order, so that no failure leaves checkpoints unverifiable: the new key is written to a
    private temp file first; then the old key's record (signed by the new key) goes to the
    store; then the temp file replaces ``path`` atomically. If the store write fails nothing has
    changed; the old private key is gone once the rename succeeds (a retired key that still
    exists could sign backdated checkpoints). Servers keep signing with the key they loaded
    until restarted, and refuse to once they see its record (``audit_key_retired``): restart
    every replica after a rotation. Raises ``audit_key_retired`` if the configured key was
    retired already (an old key file restored), FileNotFoundError if there is none.
    """
    path = Path(path)
    old = keys.load_signing_key(path)
    not_before = signing_start(store, old)
    new = Ed25519PrivateKey.generate()
    record = endorse(new, old.public_key(), not_before=not_before, not_after=now or utcnow())
    tmp = keys.write_key_file(path, new)
    try:
        store.put_object(record.name, record.to_json())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        os.replace(tmp, path)
    except OSError:
        # The record is out: the new key is the only one that vouches for the old one now.
        logger.error("could not move the new audit signing key %s to %s; do it by hand", tmp, path)
        raise
    new_id = keys.key_id(new.public_key())
    logger.warning(
        "rotated audit signing key %s -> %s (%s); back the new key up", record.key_id, new_id, path
    )
    return Rotation(record, new_id)
