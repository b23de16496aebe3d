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
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from registry.app import create_app
from registry.db import migrate
from registry.db.conninfo import psycopg_params
from registry.db.engine import make_engine
from registry.db.failures import outage_reason
from registry.db.leader_lock import LeaderLock
from registry.settings import DatabaseSettings
from tests.factories.catalog import unique
from tests.fixtures.app import bootstrap, make_settings
from tests.fixtures.db import (
    admin_execute,
    dialect,
    drop_database,
    new_database_url,
    postgres_admin_url,
)
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
def engine(database_url: str) -> Iterator[Engine]:
    made = make_engine(DatabaseSettings(url=database_url))
    yield made
    made.dispose()


def test_on_sqlite_one_holder_of_the_file_lock_leads(tmp_path: Path) -> None:
    # A file lock next to the database: one of `serve --workers N`'s processes leads (two
    # locks here stand for two processes: each opens the file on its own).
    engine = make_engine(DatabaseSettings(url=f"sqlite:///{tmp_path / 'lead.db'}"))
    first = LeaderLock(engine, 1, name="first")
    second = LeaderLock(engine, 1, name="second")
    other_key = LeaderLock(engine, 2, name="other")
    assert first.hold()
    assert first.hold()
    assert not second.hold()
    assert other_key.hold()  # another key, another file
    first.release()
    assert not first.held
    assert second.hold()  # freed with the file
    assert not first.hold()
    second.release()
    other_key.release()
    engine.dispose()


def test_on_in_memory_sqlite_every_caller_leads() -> None:
    engine = make_engine(DatabaseSettings(url="sqlite://"))
    lock = LeaderLock(engine, 1, name="test")
    assert lock.hold()
    lock.release()
    assert lock.held
    engine.dispose()


@postgres_only
def test_the_lead_moves_when_the_leaders_connection_dies(engine: Engine) -> None:
    key = uuid.uuid4().int & 0x7FFF_FFFF_FFFF_FFFF  # this test's own lock
    first = LeaderLock(engine, key, name="first")
    second = LeaderLock(engine, key, name="second")
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
def test_a_write_on_a_read_only_node_is_an_outage(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SET TRANSACTION READ ONLY"))
        with pytest.raises(DBAPIError) as caught:
            conn.execute(text("CREATE TABLE never_made (x int)"))
    assert outage_reason(caught.value) == "read_only"


@postgres_only
def test_the_api_answers_503_read_only_when_its_node_turns_read_only(tmp_path: Path) -> None:
    """A node that stopped accepting writes (a demoted primary, a URL reaching a standby): writes
    answer ``503 database_unavailable`` (reason ``read_only``) with ``Retry-After``, reads go on.
    Made real with ``default_transaction_read_only`` on the app's own database."""
    url = new_database_url(tmp_path, "registry_ro")
    try:
        migrate.upgrade(url)
        token = bootstrap(url, "admin")
        app = create_app(make_settings(url, tmp_path / "artifacts"))
        with TestClient(app, raise_server_exceptions=False) as client:
            client.headers["Authorization"] = f"Bearer {token}"
            assert client.post("/api/v1/namespaces", json={"name": unique("ns")}).status_code == 201
            name = make_url(url).database
            admin_execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
            admin_execute(  # new sessions see the setting: end the pool's current ones
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            )
            refused = client.post("/api/v1/namespaces", json={"name": unique("ns")})
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"] == "database_unavailable"
            assert refused.json()["context"]["reason"] in ("read_only", "connection")
            assert "Retry-After" in refused.headers
            # Once pooled connections are fresh, the reason is read_only, and reads still work.
            again = client.post("/api/v1/namespaces", json={"name": unique("ns")})
            assert again.json()["context"]["reason"] == "read_only", again.text
            assert client.get("/api/v1/namespaces").status_code == 200
    finally:
        drop_database(url)
