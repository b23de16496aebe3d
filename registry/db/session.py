"""Session factories and the unit of work used by CLI commands and background jobs.

``unit_of_work`` and ``api.deps.get_session`` are the only places that commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from registry.db.engine import statement_reader_engine, writer_engine


class Sessions:
    """Readers and a writer sessionmaker over one engine. ``read_statements`` is for hot reads
    whose statements need no common snapshot (each one reads committed rows that later commits
    do not change, e.g. append-only history): it saves two round trips per request on
    PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.read = sessionmaker(bind=engine, expire_on_commit=False)
        self.read_statements = sessionmaker(
            bind=statement_reader_engine(engine), expire_on_commit=False
        )
        self.write = sessionmaker(bind=writer_engine(engine), expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Yield a session; commit when the block succeeds, roll back when it raises."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
