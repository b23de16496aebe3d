"""Session factories and the unit of work used by CLI commands and background jobs.

``unit_of_work`` and ``api.deps.get_session`` are the only places that commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from registry.db.engine import writer_engine


class Sessions:
    """A reader and a writer sessionmaker over one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.read = sessionmaker(bind=engine, expire_on_commit=False)
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
