"""Audit fixtures: a fresh migrated database per test (chains start at seq 1 and tests tamper
with rows), a local artifact store for checkpoints, and a signing key.

Tampering goes around the append-only guards the way an attacker with database access would:
on SQLite a raw ``sqlite3`` connection drops the triggers first; on PostgreSQL the superuser
sets ``session_replication_role = replica`` (ordinary triggers do not fire) on a connection of
its own, so the setting never leaks into the registry's pool.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from registry.audit import service
from registry.audit.models import AuditEvent
from registry.audit.service import AuditEntry
from registry.db import migrate
from registry.db.engine import make_engine
from registry.db.session import Sessions, unit_of_work
from registry.settings import DatabaseSettings, StorageSettings
from registry.storage.local import LocalArtifactStore
from tests.fixtures.db import admin_execute, dialect, drop_database, new_database_url

TRIGGERS = (
    "audit_events_no_update",
    "audit_events_no_delete",
    "audit_head_forward_only",
    "audit_head_no_delete",
)


@pytest.fixture(scope="session")
def postgres_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """PostgreSQL: one migrated database per worker that tests clone (``CREATE DATABASE ...
    TEMPLATE`` takes ~50 ms; migrating takes ~500 ms). None on SQLite."""
    if dialect() != "postgresql":
        yield None
        return
    url = new_database_url(tmp_path_factory.mktemp("template"), "registry_audit_tmpl")
    try:
        migrate.upgrade(url)  # disposes its engine: nobody stays connected to the template
        yield url
    finally:
        drop_database(url)


@pytest.fixture
def audit_db(tmp_path: Path, postgres_template: str | None) -> Iterator[str]:
    """A new database of the selected dialect, migrated to head; dropped afterwards."""
    if postgres_template is None:
        url = new_database_url(tmp_path, "registry_audit")
        migrate.upgrade(url)
    else:
        name = f"registry_audit_{uuid.uuid4().hex[:10]}"
        template = make_url(postgres_template).database
        admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        url = make_url(postgres_template).set(database=name).render_as_string(False)
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture
def engine(audit_db: str) -> Iterator[Engine]:
    engine = make_engine(DatabaseSettings(url=audit_db))
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> Sessions:
    return Sessions(engine)


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(StorageSettings(backend="local", root=tmp_path / "artifacts"))


@pytest.fixture
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def entry(n: int, **overrides: Any) -> AuditEntry:
    fields: dict[str, Any] = {
        "action": "adapter.version.register",
        "resource": f"adapter:acme/bot@v{n}",
        "actor": "alice",
        "decision": {"allowed": True, "policies": ["admins"], "action": "register"},
        "after": {"version": n, "score": 0.1, "tiny": 1e-7, "big": 1e16, "note": "cafe\u0301"},
        "request_id": f"req-{n}",
    }
    return AuditEntry(**(fields | overrides))


def append_events(sessions: Sessions, count: int, start: int = 1) -> None:
    """Append ``count`` events, each in its own committed transaction."""
    for n in range(start, start + count):
        with unit_of_work(sessions.write) as session:
            service.append(session, entry(n))


def json_param(engine: Engine, name: str) -> str:
    """The SQL for a JSON bind parameter ``:name`` on this dialect."""
    return f"CAST(:{name} AS JSONB)" if engine.dialect.name == "postgresql" else f":{name}"


def tamper(engine: Engine, *statements: tuple[str, dict[str, Any]]) -> None:
    """Run ``statements`` bypassing the append-only triggers (see the module docstring)."""
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        assert database is not None
        conn = sqlite3.connect(database, isolation_level=None)
        try:
            for trigger in TRIGGERS:
                conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
            for sql, params in statements:
                conn.execute(sql, params)
        finally:
            conn.close()
        return
    superuser = create_engine(engine.url, poolclass=NullPool)
    try:
        with superuser.begin() as su_conn:
            su_conn.exec_driver_sql("SET session_replication_role = replica")
            for sql, params in statements:
                su_conn.execute(text(sql), params)
    finally:
        superuser.dispose()


def event_rows(engine: Engine) -> list[dict[str, Any]]:
    """Every event as a dict of column values (typed: aware datetimes, UUIDs, JSON)."""
    stmt = select(*AuditEvent.__table__.columns).order_by(AuditEvent.seq)
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(stmt).mappings()]
