"""Concurrent appends never fork the chain: the head row lock (PostgreSQL) or the writer's
BEGIN IMMEDIATE (SQLite, waiting up to its busy timeout) serialises them."""

from __future__ import annotations

import threading

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from registry.audit import service
from registry.audit.verify import verify
from registry.db.session import Sessions, unit_of_work
from registry.storage.local import LocalArtifactStore
from tests.audit.conftest import entry, event_rows

THREADS = 50


def test_concurrent_appends_form_one_linear_chain(
    engine: Engine, store: LocalArtifactStore, signing_key: Ed25519PrivateKey
) -> None:
    sessions = Sessions(engine)
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            start.wait(timeout=60)
            with unit_of_work(Sessions(engine).write) as session:
                service.append(session, entry(n))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    rows = event_rows(engine)
    assert [row["seq"] for row in rows] == list(range(1, THREADS + 1))
    assert len({row["prev_hash"] for row in rows}) == THREADS
    assert sorted(row["request_id"] for row in rows) == sorted(f"req-{n}" for n in range(THREADS))
    with unit_of_work(sessions.read) as session:
        result = verify(session, store, public_keys=[signing_key.public_key()])
    assert (result.ok, result.events) == (True, THREADS)
