"""Engine construction: SQLite pragmas and explicit BEGIN handling, PostgreSQL pool options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from registry.settings import DatabaseSettings

SQLITE_BEGIN_OPTION = "sqlite_begin"


def _ensure_sqlite_parent(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def make_engine(
    settings: DatabaseSettings,
    *,
    application_name: str = "adapter-registry",
    timeouts: bool = True,
) -> Engine:
    """Build the engine for ``settings.url`` (nothing connects until first use).

    PostgreSQL gets every bound from ``settings`` (connect, statement, lock, idle-in-transaction,
    pool wait and a client-side deadline per server wait); ``timeouts=False`` (migrations, whose
    index builds may legitimately run long) keeps only connect and pool bounds.
    """
    url = settings.url
    if settings.dialect == "sqlite":
        _ensure_sqlite_parent(url)
        kwargs: dict[str, Any] = {"echo": settings.echo}
        if ":memory:" in url or url in ("sqlite://", "sqlite:///"):
            # One in-memory DB must be shared by all sessions: a single persistent connection.
            kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            kwargs.update(connect_args={"check_same_thread": False, "timeout": 30})
        engine = create_engine(url, **kwargs)
        _setup_sqlite(engine, settings)
        return engine
    statement_ms = settings.statement_timeout_ms if timeouts else 0
    options = {
        "statement_timeout": statement_ms,
        "lock_timeout": settings.lock_timeout_ms if timeouts else 0,
        "idle_in_transaction_session_timeout": (
            settings.idle_in_transaction_timeout_ms if timeouts else 0
        ),
    }
    engine = create_engine(
        url,
        echo=settings.echo,
        pool_pre_ping=True,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout_s,
        connect_args={
            "application_name": application_name,
            "connect_timeout": settings.connect_timeout_s,
            "options": " ".join(f"-c {k}={v}" for k, v in options.items()),
        },
    )
    deadline = statement_ms / 1000 + settings.client_grace_s if statement_ms else None
    _setup_postgres(engine, deadline)
    return engine


def _setup_postgres(engine: Engine, deadline_s: float | None) -> None:
    from registry.db import pg_deadline

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        return pg_deadline.connect(deadline_s, *cargs, **cparams)


def _setup_sqlite(engine: Engine, settings: DatabaseSettings) -> None:
    busy_ms = settings.sqlite_busy_timeout_ms

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite: its implicit BEGIN is emitted lazily
        # before DML only, which breaks SAVEPOINTs and makes lock upgrades deadlock-prone.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        # WAL: readers never block the writer; NORMAL is durable across app crashes in WAL mode.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        # Triggers fire for REPLACE's implicit deletes too (audit tables rely on it later).
        cur.execute("PRAGMA recursive_triggers=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Write transactions take the write lock up front (BEGIN IMMEDIATE): a deferred
        # transaction that later upgrades can fail with SQLITE_BUSY without waiting.
        mode = conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")


def statement_reader_engine(engine: Engine) -> Engine:
    """The same pool; on PostgreSQL every statement commits on its own (``AUTOCOMMIT``: no
    ``BEGIN`` / ``COMMIT`` round trips, but no snapshot shared between statements either). On
    SQLite (in-process: a ``BEGIN`` costs no round trip) the engine itself."""
    if engine.dialect.name != "postgresql":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def writer_engine(engine: Engine) -> Engine:
    """The same pool, but SQLite transactions begin IMMEDIATE (a no-op option on PostgreSQL)."""
    return engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
