"""A psycopg connection that stops waiting for a server that stopped answering.

``statement_timeout`` is enforced by the server: a frozen server (stopped process, a network path
that keeps the TCP connection open but passes nothing) never enforces it, and psycopg waits on
the socket forever — every request thread, and with them ``/readyz``, hangs. This connection
gives every wait on the server (execute, fetch, commit, rollback) a client-side deadline: past it
the connection is closed, so SQLAlchemy sees a disconnect (``connection_invalidated``), drops it
from the pool, and the request answers ``503`` with ``Retry-After``.

Imported only when the engine is PostgreSQL (``registry.db.engine``).
"""

from __future__ import annotations

from typing import Any, TypeVar

import psycopg
from psycopg import errors

RV = TypeVar("RV")


class DeadlineConnection(psycopg.Connection[Any]):
    #: Seconds one wait on the server may last (None: forever, psycopg's default).
    deadline_s: float | None = None

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        if timeout is None:
            timeout = self.deadline_s
        try:
            return super().wait(gen, interval, timeout)
        except errors._WaitTimeout as exc:  # private, but the documented result of timeout=
            # The server's state for this connection is unknown: never reuse it.
            self.pgconn.finish()
            raise psycopg.OperationalError(
                f"the database did not answer within {timeout:g} s; connection closed"
            ) from exc


def connect(deadline_s: float | None, *cargs: Any, **cparams: Any) -> DeadlineConnection:
    """``psycopg.connect`` returning a :class:`DeadlineConnection` with ``deadline_s``."""
    conn = DeadlineConnection.connect(*cargs, **cparams)
    conn.deadline_s = deadline_s
    return conn
