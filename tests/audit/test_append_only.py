"""The database refuses to change or remove audit events (migration c3a1f0e2b4d5).

SQLite: triggers, plus ``PRAGMA recursive_triggers=ON`` from the registry's engine so that
``INSERT OR REPLACE`` cannot overwrite an event (security.md §4.3). PostgreSQL: the
``registry_app`` role may only SELECT and INSERT events; triggers stop even the owner.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from registry.audit import service
from registry.audit.verify import verify
from registry.db.engine import make_engine
from registry.db.session import Sessions, unit_of_work
from registry.settings import DatabaseSettings
from registry.storage.local import LocalArtifactStore
from tests.audit.conftest import append_events, entry, event_rows
from tests.fixtures.db import dialect

APPEND_ONLY = "append-only"
HEAD_FORWARD = "only moves forward"
ZERO = "0" * 64
UPSERT = (
    "INSERT INTO audit_events (seq, at, action, resource, prev_hash, hash)"
    " VALUES (1, '2030-01-01 00:00:00+00', 'forged', 'forged', :z, :h)"
    " ON CONFLICT (seq) DO UPDATE SET action = 'forged'"
)


def run(engine: Engine, sql: str, params: dict[str, Any] | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params or {})


sqlite_only = pytest.mark.skipif(dialect() != "sqlite", reason="SQLite triggers")
postgres_only = pytest.mark.skipif(dialect() != "postgresql", reason="PostgreSQL roles")


@sqlite_only
class TestSqliteThroughTheRegistryEngine:
    @pytest.mark.parametrize(
        "sql",
        [
            "UPDATE audit_events SET action = 'forged' WHERE seq = 1",
            "DELETE FROM audit_events WHERE seq = 1",
            "DELETE FROM audit_events",
            "INSERT OR REPLACE INTO audit_events (seq, at, action, resource, prev_hash, hash)"
            " VALUES (1, '2030-01-01 00:00:00.000000', 'forged', 'forged', :z, :h)",
            "REPLACE INTO audit_events (seq, at, action, resource, prev_hash, hash)"
            " VALUES (1, '2030-01-01 00:00:00.000000', 'forged', 'forged', :z, :h)",
            UPSERT.replace("+00", ""),
        ],
        ids=["update", "delete", "delete-all", "insert-or-replace", "replace", "upsert"],
    )
    def test_changing_an_event_fails(self, engine: Engine, sessions: Sessions, sql: str) -> None:
        append_events(sessions, 2)
        before = event_rows(engine)

        with pytest.raises(DBAPIError, match=APPEND_ONLY):
            run(engine, sql, {"z": ZERO, "h": "f" * 64})

        assert event_rows(engine) == before

    def test_registry_engine_sets_recursive_triggers(self, engine: Engine) -> None:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA recursive_triggers").scalar() == 1

    def test_without_recursive_triggers_insert_or_replace_overwrites(
        self, engine: Engine, sessions: Sessions
    ) -> None:
        # Why the pragma matters: a plain connection silently replaces the event.
        append_events(sessions, 1)
        assert engine.url.database is not None
        conn = sqlite3.connect(engine.url.database, isolation_level=None)
        try:
            conn.execute(
                "INSERT OR REPLACE INTO audit_events (seq, at, action, resource, prev_hash, hash)"
                " VALUES (1, '2030-01-01 00:00:00.000000', 'forged', 'forged', ?, ?)",
                (ZERO, "f" * 64),
            )
        finally:
            conn.close()

        assert [row["action"] for row in event_rows(engine)] == ["forged"]

    @pytest.mark.parametrize(
        ("sql", "message"),
        [
            ("UPDATE audit_head SET seq = 0, hash = :z", HEAD_FORWARD),
            ("UPDATE audit_head SET seq = seq + 2", HEAD_FORWARD),
            ("DELETE FROM audit_head", HEAD_FORWARD),
            ("INSERT OR REPLACE INTO audit_head (id, seq, hash) VALUES (1, 0, :z)", HEAD_FORWARD),
            ("INSERT INTO audit_head (id, seq, hash) VALUES (2, 0, :z)", "CHECK constraint"),
        ],
    )
    def test_head_cannot_be_rewound_or_removed(
        self, engine: Engine, sessions: Sessions, sql: str, message: str
    ) -> None:
        append_events(sessions, 2)

        with pytest.raises(DBAPIError, match=message):
            run(engine, sql, {"z": ZERO})


@pytest.fixture
def superuser(engine: Engine) -> Iterator[Engine]:
    """A pool-less engine on the test database as the migration (super)user."""
    su = create_engine(engine.url, poolclass=NullPool)
    try:
        yield su
    finally:
        su.dispose()


def as_app_role(superuser: Engine, sql: str, params: dict[str, Any] | None = None) -> Any:
    with superuser.begin() as conn:
        conn.exec_driver_sql("SET LOCAL ROLE registry_app")
        result = conn.execute(text(sql), params or {})
        return result.all() if result.returns_rows else None


@postgres_only
class TestPostgresAppRole:
    def test_role_exists_and_cannot_log_in(self, superuser: Engine) -> None:
        with superuser.connect() as conn:
            row = conn.execute(
                text("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'registry_app'")
            ).one()
        assert row.rolcanlogin is False

    def test_privileges_of_the_app_role(self, superuser: Engine) -> None:
        checks = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "TRIGGER")
        columns = ", ".join(
            f"has_table_privilege('registry_app', tablename, '{p}') AS {p.lower()}" for p in checks
        )
        with superuser.connect() as conn:
            rows = conn.execute(
                text(
                    f"SELECT tablename, {columns} FROM pg_tables"
                    " WHERE schemaname = current_schema()"
                )
            ).all()
        granted = {row[0]: {p for p, ok in zip(checks, row[1:], strict=True) if ok} for row in rows}

        assert granted.pop("audit_events") == {"SELECT", "INSERT"}
        assert granted.pop("audit_head") == {"SELECT", "UPDATE"}
        assert granted.pop("alembic_version") == {"SELECT"}
        # Every other table, including those of later revisions (default privileges).
        assert granted
        assert {t for t, p in granted.items() if p != set(checks)} == set()

    @pytest.mark.parametrize(
        ("sql", "message"),
        [
            ("UPDATE audit_events SET action = 'forged'", "permission denied"),
            ("DELETE FROM audit_events", "permission denied"),
            ("TRUNCATE audit_events", "permission denied"),
            (UPSERT, "permission denied"),
            ("ALTER TABLE audit_events DISABLE TRIGGER ALL", "must be owner"),
            ("SET session_replication_role = replica", "permission denied"),
            ("DELETE FROM audit_head", "permission denied"),
            ("INSERT INTO audit_head (id, seq, hash) VALUES (2, 0, :z)", "permission denied"),
        ],
        ids=[
            "update",
            "delete",
            "truncate",
            "upsert",
            "disable-trigger",
            "replication-role",
            "delete-head",
            "insert-head",
        ],
    )
    def test_app_role_cannot_change_history(
        self, superuser: Engine, sessions: Sessions, sql: str, message: str
    ) -> None:
        append_events(sessions, 2)

        with pytest.raises(DBAPIError, match=message):
            as_app_role(superuser, sql, {"z": ZERO, "h": "f" * 64})

    def test_app_role_can_insert_and_select(self, superuser: Engine) -> None:
        as_app_role(
            superuser,
            "INSERT INTO audit_events (seq, at, action, resource, prev_hash, hash)"
            " VALUES (1, now(), 'a', 'r', :z, :h)",
            {"z": ZERO, "h": "e" * 64},
        )

        assert as_app_role(superuser, "SELECT seq FROM audit_events") == [(1,)]

    def test_app_role_can_append_and_verify_through_the_service(
        self, engine: Engine, store: LocalArtifactStore
    ) -> None:
        app_engine = make_engine(
            DatabaseSettings(url=engine.url.render_as_string(hide_password=False))
        )

        @event.listens_for(app_engine, "connect")
        def _set_role(dbapi_conn: Any, _record: Any) -> None:
            with dbapi_conn.cursor() as cur:
                cur.execute("SET ROLE registry_app")
            dbapi_conn.commit()

        try:
            app = Sessions(app_engine)
            for n in (1, 2, 3):
                with unit_of_work(app.write) as session:
                    service.append(session, entry(n))
            with unit_of_work(app.read) as session:
                assert session.execute(text("SELECT current_user")).scalar() == "registry_app"
                assert session.execute(text("SELECT count(*) FROM principals")).scalar() == 0
                result = verify(session, store, public_keys=[])
        finally:
            app_engine.dispose()

        assert (result.ok, result.events) == (True, 3)


@postgres_only
class TestPostgresTriggersStopTheOwner:
    @pytest.mark.parametrize(
        "sql",
        [
            "UPDATE audit_events SET action = 'forged' WHERE seq = 1",
            "DELETE FROM audit_events WHERE seq = 1",
            "TRUNCATE audit_events",
            UPSERT,
        ],
        ids=["update", "delete", "truncate", "upsert"],
    )
    def test_superuser_hits_the_trigger(
        self, superuser: Engine, sessions: Sessions, sql: str
    ) -> None:
        append_events(sessions, 2)

        with pytest.raises(DBAPIError, match=APPEND_ONLY):
            run(superuser, sql, {"z": ZERO, "h": "f" * 64})

    @pytest.mark.parametrize(
        "sql",
        [
            "UPDATE audit_head SET seq = 0, hash = :z",
            "UPDATE audit_head SET seq = seq + 2",
            "DELETE FROM audit_head",
            "TRUNCATE audit_head",
        ],
    )
    def test_head_cannot_be_rewound_or_removed(
        self, superuser: Engine, sessions: Sessions, sql: str
    ) -> None:
        append_events(sessions, 2)

        with pytest.raises(DBAPIError, match=HEAD_FORWARD):
            run(superuser, sql, {"z": ZERO})
