"""The Checkpointer thread: exports when the head moves, survives errors, stops on stop().

Waits are bounded condition waits (``wait_for``), never sleeps used as assertions.
"""

from __future__ import annotations

import logging

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from registry.audit import service as audit_service
from registry.audit.checkpoints import CHECKPOINT_PREFIX, Checkpointer, checkpoint_name
from registry.audit.verify import verify
from registry.db.session import Sessions, unit_of_work
from registry.errors import AuditChainBroken, StorageUnavailable
from registry.settings import StorageSettings
from registry.storage.local import LocalArtifactStore
from tests.audit.conftest import append_events, entry, tamper

WAIT_S = 30.0
INTERVAL_S = 0.01


class FlakyStore(LocalArtifactStore):
    """A local store whose first ``failures`` writes fail as an outage would."""

    def __init__(self, settings: StorageSettings, failures: int) -> None:
        super().__init__(settings)
        self.failures = failures

    def put_object(self, name: str, data: bytes) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise StorageUnavailable("object store unavailable")
        super().put_object(name, data)


def test_interval_must_be_positive(
    sessions: Sessions, store: LocalArtifactStore, signing_key: Ed25519PrivateKey
) -> None:
    with pytest.raises(ValueError, match="interval_s"):
        Checkpointer(sessions, store, signing_key, interval_s=0)


def test_thread_exports_as_the_head_moves_and_stops(
    sessions: Sessions, store: LocalArtifactStore, signing_key: Ed25519PrivateKey
) -> None:
    append_events(sessions, 3)
    checkpointer = Checkpointer(sessions, store, signing_key, interval_s=INTERVAL_S)
    checkpointer.start()
    try:
        assert checkpointer.running
        assert checkpointer.wait_for(3, timeout_s=WAIT_S)
        # seq 4 is the checkpoint's own audit event: alone, it is no reason for another one.
        # Seqs 5 and 6 commit together, so the next head the thread can see is 6 (two
        # transactions would let it checkpoint 5 in between, as a CI run once did).
        with unit_of_work(sessions.write) as session:
            for n in (5, 6):
                audit_service.append(session, entry(n))
        assert checkpointer.wait_for(6, timeout_s=WAIT_S)
    finally:
        checkpointer.stop(timeout_s=WAIT_S)

    assert not checkpointer.running
    names = store.list_objects(CHECKPOINT_PREFIX)
    assert {checkpoint_name(3), checkpoint_name(6)} <= set(names)
    assert checkpoint_name(4) not in names
    with unit_of_work(sessions.read) as session:
        result = verify(session, store, public_keys=[signing_key.public_key()])
    assert result.ok
    assert result.checkpoints == len(names)


def test_start_twice_is_refused(
    sessions: Sessions, store: LocalArtifactStore, signing_key: Ed25519PrivateKey
) -> None:
    checkpointer = Checkpointer(sessions, store, signing_key, interval_s=INTERVAL_S)
    checkpointer.start()
    try:
        with pytest.raises(RuntimeError, match="already started"):
            checkpointer.start()
    finally:
        checkpointer.stop(timeout_s=WAIT_S)


def test_stop_before_start_is_harmless(
    sessions: Sessions, store: LocalArtifactStore, signing_key: Ed25519PrivateKey
) -> None:
    Checkpointer(sessions, store, signing_key, interval_s=INTERVAL_S).stop()


def test_errors_are_logged_and_the_thread_carries_on(
    sessions: Sessions,
    store: LocalArtifactStore,
    signing_key: Ed25519PrivateKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    flaky = FlakyStore(StorageSettings(backend="local", root=store.root), failures=2)
    append_events(sessions, 2)
    checkpointer = Checkpointer(sessions, flaky, signing_key, interval_s=INTERVAL_S)

    with caplog.at_level(logging.ERROR, logger="registry.audit.checkpoints"):
        checkpointer.start()
        try:
            assert checkpointer.wait_for(2, timeout_s=WAIT_S)
        finally:
            checkpointer.stop(timeout_s=WAIT_S)

    assert flaky.failures == 0
    assert caplog.text.count("audit checkpoint export failed") == 2
    assert flaky.list_objects(CHECKPOINT_PREFIX) == [checkpoint_name(2)]


def test_run_once_skips_an_unmoved_head(
    sessions: Sessions, store: LocalArtifactStore, signing_key: Ed25519PrivateKey
) -> None:
    checkpointer = Checkpointer(sessions, store, signing_key, interval_s=60)
    assert checkpointer.run_once() is None  # empty log
    append_events(sessions, 1)

    first = checkpointer.run_once()

    assert first is not None
    assert checkpointer.run_once() is None
    assert checkpointer.last == first


def test_resumes_from_the_stored_checkpoint_and_checks_the_stretch(
    sessions: Sessions,
    store: LocalArtifactStore,
    signing_key: Ed25519PrivateKey,
    engine: Engine,
) -> None:
    append_events(sessions, 2)
    assert Checkpointer(sessions, store, signing_key, interval_s=60).run_once() is not None
    append_events(sessions, 2, start=3)
    tamper(engine, ("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3", {}))
    restarted = Checkpointer(sessions, store, signing_key, interval_s=60)

    with pytest.raises(AuditChainBroken, match="since the last checkpoint"):
        restarted.run_once()

    assert restarted.last is not None
    assert restarted.last.seq == 2
    assert store.list_objects(CHECKPOINT_PREFIX) == [checkpoint_name(2)]


def test_each_new_checkpoint_is_an_audit_event_and_its_event_alone_makes_none(
    sessions: Sessions, store: LocalArtifactStore, signing_key: Ed25519PrivateKey
) -> None:
    append_events(sessions, 2)
    checkpointer = Checkpointer(sessions, store, signing_key, interval_s=INTERVAL_S)
    first = checkpointer.run_once()
    assert first is not None
    assert first.seq == 2
    assert checkpointer.run_once() is None  # the head moved only by the checkpoint's event
    with unit_of_work(sessions.read) as session:
        events = audit_service.log(
            session,
            actor=None,
            action="audit.checkpoint",
            resource=None,
            since=None,
            until=None,
            after_seq=None,
            limit=10,
        )
        result = verify(session, store, public_keys=[signing_key.public_key()])
    assert [(e.seq, e.resource, e.after["seq"], e.after["hash"]) for e in events] == [
        (3, "audit-checkpoint:2", 2, first.hash)
    ]
    assert result.ok
    append_events(sessions, 1, start=4)
    second = checkpointer.run_once()
    assert second is not None
    assert second.seq == 4  # covers the first checkpoint's event too
