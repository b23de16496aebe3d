"""The parts a database failover relies on, each on its own (tests/ha puts them together):
multi-host URLs reach libpq host by host, the controller's leader lock moves to another holder
when its connection dies and is competed for again, and a session left on a read-only node is
an outage (503), not a bug."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from registry.db.conninfo import psycopg_params
from registry.db.engine import make_engine
from registry.db.failures import outage_reason
from registry.db.leader_lock import LeaderLock
from registry.settings import DatabaseSettings
from tests.fixtures.db import dialect, postgres_admin_url
from tests.fixtures.server import free_port

postgres_only = pytest.mark.skipif(dialect() != "postgresql", reason="PostgreSQL only")


@pytest.mark.parametrize(
    "query",
    [
        "host=db-a:5432&host=db-b:6432&target_session_attrs=read-write",
        "host=db-a,db-b&port=5432,6432&target_session_attrs=read-write",
    ],
)
def test_multi_host_urls_reach_libpq_host_by_host(query: str) -> None:
    engine = create_engine(f"postgresql+psycopg://registry:pw@/registry?{query}")
    params = psycopg_params(engine, connect_timeout_s=2)
    assert params["host"] == "db-a,db-b"
    assert params["port"] == "5432,6432"
    assert params["target_session_attrs"] == "read-write"
    assert (params["user"], params["password"], params["dbname"]) == ("registry", "pw", "registry")
    assert params["connect_timeout"] == 2


@postgres_only
def test_a_multi_host_url_skips_a_dead_node(database_url: str) -> None:
    live = make_url(database_url)
    dead = free_port()  # nothing listens there
    url = (
        f"postgresql+psycopg://{live.username}@/{live.database}?host=127.0.0.1:{dead}"
        f"&host={live.host}:{live.port or 5432}&target_session_attrs=read-write"
    )
    engine = make_engine(DatabaseSettings(url=url))
    try:
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT inet_server_port()")) == (live.port or 5432)
        with psycopg.connect(**psycopg_params(engine)) as raw:  # what LISTEN and the lock use
            assert raw.execute("SELECT 1").fetchone() == (1,)
    finally:
        engine.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[object]:
    made = make_engine(DatabaseSettings(url=database_url))
    yield made
    made.dispose()


def test_on_sqlite_every_caller_leads(tmp_path: Path) -> None:
    engine = make_engine(DatabaseSettings(url=f"sqlite:///{tmp_path / 'lead.db'}"))
    lock = LeaderLock(engine, 1, name="test")
    assert lock.hold()
    assert lock.hold()
    lock.release()
    assert lock.held


@postgres_only
def test_the_lead_moves_when_the_leaders_connection_dies(engine: object) -> None:
    key = uuid.uuid4().int & 0x7FFF_FFFF_FFFF_FFFF  # this test's own lock
    first = LeaderLock(engine, key, name="first")  # type: ignore[arg-type]
    second = LeaderLock(engine, key, name="second")  # type: ignore[arg-type]
    try:
        assert first.hold()
        assert not second.hold()
        assert first.hold()  # still the leader: its connection is alive
        # The leader's connection dies (a failover, the server restarted it, a network cut).
        with psycopg.connect(postgres_admin_url().replace("+psycopg", ""), autocommit=True) as c:
            c.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name LIKE 'first %'"
            )
        assert second.hold()  # the lock was freed with the session: the next asker leads
        assert not first.hold()  # noticed, reconnected, competed again, and lost
        second.release()
        # ... and takes it back once it is free (the server ends the closed session, and so
        # frees the lock, a moment after the client closed it: ask again, bounded).
        for _ in range(200):
            if first.hold():
                break
            time.sleep(0.05)
        assert first.held
    finally:
        first.release()
        second.release()


@postgres_only
def test_a_write_on_a_read_only_node_is_an_outage(engine: object) -> None:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        conn.execute(text("SET TRANSACTION READ ONLY"))
        with pytest.raises(DBAPIError) as caught:
            conn.execute(text("CREATE TABLE never_made (x int)"))
    assert outage_reason(caught.value) == "read_only"
