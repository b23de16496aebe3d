"""The session factories: the statement reader runs without a transaction on PostgreSQL (no
BEGIN / COMMIT round trips) and hands its connection back to the pool as it found it, so the
next reader of that connection gets a transaction again."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from registry.db.engine import make_engine
from registry.db.session import Sessions, unit_of_work
from registry.settings import DatabaseSettings


def _in_transaction(session: Session) -> tuple[Any, bool]:
    """The DB-API connection under ``session`` and whether the database has a transaction open
    on it after one statement."""
    session.execute(text("SELECT 1"))
    raw = session.connection().connection.dbapi_connection
    assert raw is not None
    if session.get_bind().dialect.name == "postgresql":
        from psycopg.pq import TransactionStatus

        return raw, raw.info.transaction_status == TransactionStatus.INTRANS
    return raw, bool(raw.in_transaction)


def test_statement_reader_skips_the_transaction_and_resets_the_connection(
    database_url: str,
) -> None:
    engine = make_engine(DatabaseSettings(url=database_url, pool_size=1, max_overflow=0))
    sessions = Sessions(engine)
    postgres = engine.dialect.name == "postgresql"
    try:
        with unit_of_work(sessions.read_statements) as session:
            first, open_tx = _in_transaction(session)
        assert open_tx is not postgres  # SQLite: the plain reader (a BEGIN is in-process)
        for factory in (sessions.read, sessions.write, sessions.read_statements, sessions.read):
            with unit_of_work(factory) as session:
                raw, open_tx = _in_transaction(session)
            assert raw is first  # one pooled connection throughout
            assert open_tx is (factory is not sessions.read_statements or not postgres)
    finally:
        engine.dispose()
