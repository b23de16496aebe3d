"""Checkpoint export: format and name, signature, idempotence, and refusing to sign a broken
chain."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from registry.audit import canonical, service
from registry.audit.checkpoints import (
    CHECKPOINT_PREFIX,
    Checkpoint,
    checkpoint_name,
    export_checkpoint,
    latest_checkpoint,
)
from registry.audit.keys import key_id, raw_public_key
from registry.db.session import Sessions, unit_of_work
from registry.errors import AuditChainBroken
from registry.storage.local import LocalArtifactStore
from tests.audit.conftest import append_events, tamper


def export(
    sessions: Sessions,
    store: LocalArtifactStore,
    key: Ed25519PrivateKey,
    previous: Checkpoint | None = None,
) -> Checkpoint | None:
    with unit_of_work(sessions.read) as session:
        return export_checkpoint(session, store, key, previous=previous)


def test_name_is_zero_padded_seq() -> None:
    assert checkpoint_name(42) == "audit/checkpoints/00000000000000000042.json"


def test_no_events_writes_nothing(
    sessions: Sessions, store: LocalArtifactStore, signing_key: Ed25519PrivateKey
) -> None:
    assert export(sessions, store, signing_key) is None
    assert store.list_objects("") == []
    assert latest_checkpoint(store) is None


def test_checkpoint_document_and_signature(
    sessions: Sessions, store: LocalArtifactStore, signing_key: Ed25519PrivateKey
) -> None:
    append_events(sessions, 3)
    with unit_of_work(sessions.read) as session:
        head = service.head(session)

    checkpoint = export(sessions, store, signing_key)

    assert checkpoint is not None
    assert store.list_objects(CHECKPOINT_PREFIX) == ["audit/checkpoints/00000000000000000003.json"]
    raw = store.get_object(checkpoint.name)
    doc = json.loads(raw)
    public = signing_key.public_key()
    assert set(doc) == {"seq", "hash", "at", "key_id", "public_key", "segment", "signature"}
    assert (doc["seq"], doc["hash"]) == (3, head.hash)
    assert doc["key_id"] == key_id(public)
    assert doc["public_key"] == raw_public_key(public).hex()
    assert doc["at"].endswith("Z")
    # The first checkpoint's segment is the whole log: 3 events, syndrome of 1 + 2 values.
    assert doc["segment"]["after"] == 0
    assert len(doc["segment"]["syndrome"]) == 3
    assert raw == canonical.canonical_json(doc)
    signed = canonical.canonical_json(
        {k: doc[k] for k in ("seq", "hash", "at", "key_id", "segment")}
    )
    public.verify(bytes.fromhex(doc["signature"]), signed)  # raises if invalid
    assert Checkpoint.from_json(raw) == checkpoint
    assert latest_checkpoint(store) == checkpoint


def test_export_is_idempotent_for_the_same_head(
    sessions: Sessions, store: LocalArtifactStore, signing_key: Ed25519PrivateKey
) -> None:
    append_events(sessions, 2)
    first = export(sessions, store, signing_key)

    again = export(sessions, store, signing_key)

    assert again == first
    assert len(store.list_objects(CHECKPOINT_PREFIX)) == 1


def test_new_events_give_a_new_checkpoint(
    sessions: Sessions, store: LocalArtifactStore, signing_key: Ed25519PrivateKey
) -> None:
    append_events(sessions, 2)
    first = export(sessions, store, signing_key)
    append_events(sessions, 2, start=3)

    second = export(sessions, store, signing_key, previous=first)

    assert second is not None
    assert second.seq == 4
    assert store.list_objects(CHECKPOINT_PREFIX) == [checkpoint_name(2), checkpoint_name(4)]


class TestRefusesToSignABrokenChain:
    def test_head_not_matching_its_event(
        self,
        engine: Engine,
        sessions: Sessions,
        store: LocalArtifactStore,
        signing_key: Ed25519PrivateKey,
    ) -> None:
        append_events(sessions, 2)
        tamper(engine, ("UPDATE audit_head SET hash = :h", {"h": "ab" * 32}))

        with pytest.raises(AuditChainBroken, match="audit_head does not match"):
            export(sessions, store, signing_key)
        assert store.list_objects("") == []

    def test_stretch_since_previous_checkpoint_broken(
        self,
        engine: Engine,
        sessions: Sessions,
        store: LocalArtifactStore,
        signing_key: Ed25519PrivateKey,
    ) -> None:
        append_events(sessions, 2)
        first = export(sessions, store, signing_key)
        append_events(sessions, 3, start=3)
        tamper(engine, ("UPDATE audit_events SET actor = 'mallory' WHERE seq = 4", {}))

        with pytest.raises(AuditChainBroken, match="since the last checkpoint") as excinfo:
            export(sessions, store, signing_key, previous=first)
        assert excinfo.value.context["first_bad_seq"] == 4
        assert excinfo.value.context["reason"] == "hash_mismatch"

    def test_database_behind_previous_checkpoint(
        self,
        engine: Engine,
        sessions: Sessions,
        store: LocalArtifactStore,
        signing_key: Ed25519PrivateKey,
    ) -> None:
        append_events(sessions, 4)
        first = export(sessions, store, signing_key)
        with unit_of_work(sessions.read) as session:
            (second,) = service.log(session, after_seq=1, limit=1)
        tamper(
            engine,
            ("DELETE FROM audit_events WHERE seq > 2", {}),
            ("UPDATE audit_head SET seq = 2, hash = :h", {"h": second.hash}),
        )

        with pytest.raises(AuditChainBroken, match="behind the last checkpoint"):
            export(sessions, store, signing_key, previous=first)

    def test_existing_checkpoint_naming_another_hash(
        self,
        engine: Engine,
        sessions: Sessions,
        store: LocalArtifactStore,
        signing_key: Ed25519PrivateKey,
    ) -> None:
        append_events(sessions, 2)
        real = export(sessions, store, signing_key)
        assert real is not None
        doc = json.loads(real.to_json()) | {"hash": "cd" * 32}
        store.put_object(real.name, json.dumps(doc).encode())

        with pytest.raises(AuditChainBroken, match="names another hash"):
            export(sessions, store, signing_key)

    def test_existing_checkpoint_malformed(
        self, sessions: Sessions, store: LocalArtifactStore, signing_key: Ed25519PrivateKey
    ) -> None:
        append_events(sessions, 1)
        store.put_object(checkpoint_name(1), b"garbage")

        with pytest.raises(AuditChainBroken, match="malformed"):
            export(sessions, store, signing_key)
