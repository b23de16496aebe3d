"""A full database disk answers 503 (not 500) and turns /readyz red (issue 11, point 6).

The disk is real and really full: a small tmpfs mounted for the test holds the SQLite file, or a
PostgreSQL tablespace that the test database lives in; the test fills it with a file (SQLite) or
a table (PostgreSQL) until the filesystem refuses, then writes through the API. Mounting needs
root (CI runs as root); elsewhere the test is skipped with the reason, and in CI it fails.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from registry.app import create_app
from registry.db import migrate
from registry.settings import ServerSettings
from tests.factories.catalog import unique
from tests.fixtures.app import bootstrap, make_settings
from tests.fixtures.db import dialect, postgres_admin_url


@contextlib.contextmanager
def tmpfs(path: Path, size: str, *, owner: str | None = None) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size},mode=0700"
    if owner is not None:
        entry = pwd.getpwnam(owner)
        options += f",uid={entry.pw_uid},gid={entry.pw_gid}"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
        with contextlib.suppress(OSError):
            path.rmdir()


def fill(filler: Path) -> None:
    """Write ``filler`` until its filesystem is full (delete it to free the space)."""
    block = b"\0" * 4096
    # Unbuffered: nothing is left to flush (and fail) when the file closes.
    with filler.open("wb", buffering=0) as f, contextlib.suppress(OSError):
        while f.write(block):
            pass


def _client(url: str, tmp_path: Path) -> TestClient:
    settings = make_settings(url, tmp_path / "artifacts")
    # The tmpfs is tiny: readiness's free-space floor must sit below what it has when empty.
    settings.server = ServerSettings(min_free_disk_bytes=16 * 1024)
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    client.headers["Authorization"] = f"Bearer {bootstrap(url, 'disk-' + uuid.uuid4().hex[:6])}"
    return client


def _assert_full_then_recovers(
    client: TestClient, fill_disk: Callable[[], None], free: Callable[[], None]
) -> None:
    assert client.get("/readyz").status_code == 200
    fill_disk()
    r = client.post("/api/v1/namespaces", json={"name": unique("full")})
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "database_unavailable"
    assert r.json()["context"]["reason"] == "disk_full"
    assert r.headers["Retry-After"]
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"].startswith("database_unavailable:disk_full")
    assert client.get("/healthz").status_code == 200
    free()
    assert client.post("/api/v1/namespaces", json={"name": unique("ok")}).status_code == 201
    assert client.get("/readyz").status_code == 200


def test_sqlite_disk_full(tmp_path: Path) -> None:
    if dialect() != "sqlite":
        pytest.skip("the PostgreSQL leg fills a tablespace (test_postgres_disk_full)")
    with tmpfs(tmp_path / "disk", "32m") as disk:
        url = f"sqlite:///{disk / 'registry.db'}"
        migrate.upgrade(url)
        with _client(url, tmp_path) as client:
            # Empty the WAL so that the next commit has to grow it on the full disk.
            engine = create_engine(url)
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            engine.dispose()
            filler = disk / "filler"
            _assert_full_then_recovers(client, lambda: fill(filler), filler.unlink)


def test_postgres_disk_full(tmp_path: Path) -> None:
    if dialect() != "postgresql":
        pytest.skip("the SQLite leg fills the database file's disk (test_sqlite_disk_full)")
    admin_url = make_url(postgres_admin_url())
    if admin_url.host not in ("127.0.0.1", "localhost", None):
        pytest.skip("a tablespace on a local tmpfs needs PostgreSQL on this machine")
    suffix = uuid.uuid4().hex[:10]
    space, database = f"full_{suffix}", f"registry_full_{suffix}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    # Under /tmp itself: the server's user must be able to reach the directory (pytest's own
    # temporary directories are private to root).
    # Room for the migrated schema (about 4 MB and growing with it) and then the filler table:
    # at 4 MB the filler's CREATE TABLE itself could meet the full disk.
    with tmpfs(Path("/tmp") / f"registry-{space}", "24m", owner="postgres") as disk:
        try:
            with admin.connect() as conn:
                conn.execute(text(f"CREATE TABLESPACE {space} LOCATION '{disk}'"))
                conn.execute(text(f'CREATE DATABASE "{database}" TABLESPACE {space}'))
            url = admin_url.set(database=database).render_as_string(hide_password=False)
            migrate.upgrade(url)
            with _client(url, tmp_path) as client:
                engine = create_engine(url, isolation_level="AUTOCOMMIT")
                with engine.connect() as conn:

                    def fill_disk() -> None:
                        conn.execute(text("CREATE TABLE filler (pad text)"))
                        # Uncompressed, in-line rows: each takes most of a page. One row per
                        # statement, until the tablespace cannot take one more page.
                        conn.execute(text("ALTER TABLE filler ALTER COLUMN pad SET STORAGE PLAIN"))
                        with contextlib.suppress(OperationalError):  # 53100: the disk is full
                            for _ in range(100_000):
                                conn.execute(text("INSERT INTO filler VALUES (repeat('x', 7000))"))

                    def free() -> None:
                        conn.execute(text("DROP TABLE filler"))

                    _assert_full_then_recovers(client, fill_disk, free)
                engine.dispose()
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
                conn.execute(text(f"DROP TABLESPACE IF EXISTS {space}"))
            admin.dispose()
