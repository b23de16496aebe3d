"""Readiness: is each dependency usable *now*, answered within a deadline whatever they do.

Kept out of the api package: it runs SQL. ``/readyz`` must answer within ``readiness_timeout_s``
even when a dependency hangs (a frozen PostgreSQL or S3 leaves a check waiting on a socket), so
each check runs in a thread of its own with a deadline; a check still running from an earlier
probe is reported as ``timeout`` without starting another, so a hung dependency cannot pile up
threads. Failures that a read cannot see (a full disk answers SELECTs fine) are reported from
what requests met (:class:`DependencyHealth`) and, on local disks, from the free space left.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from registry.db.failures import outage_reason
from registry.db.migrate import SchemaOutOfDate
from registry.db.session import Sessions, unit_of_work
from registry.errors import DatabaseUnavailable, RegistryError, StorageUnavailable
from registry.settings import Settings
from registry.storage.base import ArtifactStore

#: Failures that a successful SELECT does not disprove: readiness stays red this long after a
#: request met one.
STICKY_REASONS = frozenset({"disk_full", "resources"})


def check_database(session: Session, *, expected_heads: frozenset[str]) -> None:
    """The database answers and is still at the schema this process was started for (a
    replica left behind by a newer migration must report not ready)."""
    current = set(session.scalars(text("SELECT version_num FROM alembic_version")))
    if current != expected_heads:
        raise SchemaOutOfDate(
            "the database schema changed under this server",
            context={"current": sorted(current), "required": sorted(expected_heads)},
        )


def check_free_space(path: Path, *, min_free_bytes: int, error: type[RegistryError]) -> None:
    """``error`` (reason ``disk_full``) when the filesystem holding ``path`` is nearly full."""
    probe = path if path.exists() else path.parent
    free = shutil.disk_usage(probe).free
    if free < min_free_bytes:
        raise error(
            "the disk is (nearly) full",
            context={"reason": "disk_full", "free_bytes": free, "min_free_bytes": min_free_bytes},
        )


class DependencyHealth:
    """What requests met that readiness must report: fed by the API's error handlers, cleared
    by the next write that commits (or after ``window_s``)."""

    def __init__(self, *, window_s: float = 60.0) -> None:
        self.window_s = window_s
        self._database: tuple[str, float] | None = None

    def database_failed(self, reason: str) -> None:
        if reason in STICKY_REASONS:
            self._database = (reason, time.monotonic())

    def database_ok(self) -> None:
        """A write transaction committed: whatever failed before is over."""
        if self._database is not None:
            self._database = None

    def database_problem(self) -> str | None:
        failure = self._database
        if failure is None or time.monotonic() - failure[1] > self.window_s:
            return None
        return failure[0]

    def check_database(self) -> None:
        reason = self.database_problem()
        if reason is not None:
            raise DatabaseUnavailable(
                "requests met a database failure recently", context={"reason": reason}
            )


def outcome(future: Future[None]) -> str:
    """``ok``, ``timeout`` (still running), or the failure's error code / reason."""
    if not future.done():
        return "timeout"
    exc = future.exception()
    if exc is None:
        return "ok"
    if isinstance(exc, RegistryError):
        reason = exc.context.get("reason")
        return f"{exc.code}:{reason}" if isinstance(reason, str) else exc.code
    if isinstance(exc, DBAPIError):
        return outage_reason(exc) or "error"
    return "unreachable"


def _consume(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class ReadinessProbe:
    """Runs named checks concurrently, each single-flight, and reports them within a deadline."""

    def __init__(self, checks: Mapping[str, Callable[[], None]], *, deadline_s: float) -> None:
        self._checks = dict(checks)
        self._deadline_s = deadline_s
        self._pool = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="readyz")
        self._running: dict[str, Future[None]] = {}

    def prime(self, name: str) -> None:
        """Start check ``name`` now without waiting for it (at start-up, so a misconfigured
        dependency is logged before the first probe asks)."""
        if name not in self._running:
            self._running[name] = self._pool.submit(self._checks[name])

    async def run(self) -> dict[str, str]:
        """Each check's outcome (called on the event loop only: no lock needed)."""
        futures: dict[str, Future[None]] = {}
        for name, check in self._checks.items():
            future = self._running.get(name)
            if future is None or future.done():
                future = self._running[name] = self._pool.submit(check)
            futures[name] = future
        waiting = [asyncio.wrap_future(f) for f in futures.values()]
        for w in waiting:  # outcomes are read from the concurrent futures: silence these
            w.add_done_callback(_consume)
        await asyncio.wait(waiting, timeout=self._deadline_s)
        return {name: outcome(f) for name, f in futures.items()}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def build_probe(
    *,
    sessions: Sessions,
    store: ArtifactStore,
    settings: Settings,
    expected_heads: frozenset[str],
    health: DependencyHealth,
) -> ReadinessProbe:
    """The ``/readyz`` probe of a server: database (schema, failures met, local disk) and
    artifact store (reachable, local disk)."""
    min_free = settings.server.min_free_disk_bytes
    sqlite_file = sqlite_path(settings.database.url)

    def database() -> None:
        health.check_database()
        with unit_of_work(sessions.read) as session:
            check_database(session, expected_heads=expected_heads)
        if sqlite_file is not None:
            check_free_space(sqlite_file, min_free_bytes=min_free, error=DatabaseUnavailable)

    def storage() -> None:
        store.check()
        if settings.storage.backend == "local":
            check_free_space(
                Path(settings.storage.root), min_free_bytes=min_free, error=StorageUnavailable
            )

    return ReadinessProbe(
        {"database": database, "storage": storage}, deadline_s=settings.server.readiness_timeout_s
    )


def sqlite_path(url: str) -> Path | None:
    """The database file of a file-backed SQLite URL (None for PostgreSQL and ``:memory:``)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser()
