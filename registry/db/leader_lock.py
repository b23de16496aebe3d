"""One replica at a time: a session-level advisory lock held on a connection of its own.

``hold()`` is called before every round of a singleton background task (the rollout
controller). The replica whose connection holds the lock acts; the others skip. When the
holder dies (process killed, host gone), PostgreSQL ends its session and frees the lock, and
the next replica to ask takes it over. When the holder's own connection dies (the database
restarted or failed over to a standby), ``hold()`` notices on its next call, drops the
connection and competes for the lock again on a fresh one (through the same URL, so a
multi-host URL with ``target_session_attrs=read-write`` lands on the new primary).

Holding the lock says who runs rounds, not that a round is alone: between a holder losing its
session and noticing, another replica may already act. Rounds therefore still serialise on
their own transaction-level lock (``registry.traffic.controller``).

On SQLite the lock is an exclusive ``flock`` on a file next to the database
(``<database>.leader-<key hex>``), held on an open file of its own: one of the server's worker
processes (``serve --workers N``) holds it, and the kernel frees it when that process dies. An
in-memory database has one process only: every caller holds it there.

The lock's connection is named ``<application_name> <host>:<pid>`` (``pg_stat_activity``), so an
operator (and the HA test) can tell which replica leads::

    SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)
    WHERE l.locktype = 'advisory' AND l.granted;
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
from typing import Any

from sqlalchemy import Engine

from registry.db.conninfo import psycopg_params

log = logging.getLogger("registry.leader")


class LeaderLock:
    def __init__(
        self,
        engine: Engine,
        key: int,
        *,
        name: str,
        connect_timeout_s: int = 3,
        deadline_s: float = 10.0,
    ) -> None:
        self._key = key
        self._name = name
        self._deadline_s = deadline_s
        self._params: dict[str, Any] | None = None
        if engine.dialect.name == "postgresql":
            label = f"{name} {socket.gethostname()}:{os.getpid()}"
            self._params = {
                **psycopg_params(engine, connect_timeout_s=connect_timeout_s),
                "application_name": label[:63],
            }
        self._path: str | None = None  # the lock file (SQLite on a file)
        database = engine.url.database
        if engine.dialect.name == "sqlite" and database and database != ":memory:":
            self._path = f"{database}.leader-{key:x}"
        self._fd: int | None = None  # the open lock file while this process holds its flock
        self._conn: Any = None  # the dedicated connection (PostgreSQL), None before/after one
        self.held = self._params is None and self._path is None

    def hold(self) -> bool:
        """Whether this process holds the lock now (taking it when it is free)."""
        if self._path is not None:
            return self._hold_file(self._path)
        if self._params is None:
            return True
        if self._conn is not None and self.held:
            try:
                self._conn.execute("SELECT 1")
                return True
            except Exception:
                log.warning("%s: lock connection lost; competing again", self._name)
                self._drop()
        try:
            if self._conn is None:
                self._conn = self._connect()
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
        except Exception as exc:
            log.warning("%s: cannot ask for the lock (%s)", self._name, exc)
            self._drop()
            return False
        if bool(row and row[0]) and not self.held:
            log.info("%s: this replica holds the lock now", self._name)
        self.held = bool(row and row[0])
        return self.held

    def _hold_file(self, path: str) -> bool:
        if self._fd is not None:
            return True
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            log.warning("%s: cannot open the lock file %s (%s)", self._name, path, exc)
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another process holds it
            os.close(fd)
            return False
        log.info("%s: this process holds the lock now (pid %d)", self._name, os.getpid())
        self._fd, self.held = fd, True
        return True

    def release(self) -> None:
        """Close the connection (PostgreSQL frees the lock with the session) or the lock file
        (the kernel frees the flock with it)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
            self.held = False
        self._drop()

    def _connect(self) -> Any:
        from registry.db import pg_deadline  # psycopg: only on PostgreSQL

        return pg_deadline.connect(self._deadline_s, **(self._params or {}), autocommit=True)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self.held = self._fd is not None or (self._params is None and self._path is None)
        if conn is not None:
            try:
                conn.close()
            except Exception:  # a broken connection: nothing left to close
                log.debug("%s: closing the lock connection failed", self._name, exc_info=True)
