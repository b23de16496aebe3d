"""A PostgreSQL 15 primary and a synchronous streaming standby of the test's own, on loopback.

Made with ``initdb`` and ``pg_basebackup`` in a temporary directory on free ports; the shared
cluster on 5432 is never touched. PostgreSQL refuses to run as root: as root (CI) every
PostgreSQL program runs as the ``postgres`` OS user and the directory is handed to it.

Synchronous replication (``synchronous_standby_names`` + ``synchronous_commit=on``): a commit
the primary acknowledges has been flushed by the standby, so promoting the standby loses no
acknowledged write. The setting is given on the primary's command line only, so the standby
(a copy of the primary's data directory) does not inherit it and, once promoted, does not wait
for a standby of its own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tests.fixtures.server import free_port

log = logging.getLogger("tests.ha")
PG_BIN = Path(os.environ.get("REGISTRY_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
STANDBY_NAME = "standby1"
_TIMEOUT_S = 30


def missing() -> str | None:
    """Why the pair cannot be made here (None when it can)."""
    for tool in ("initdb", "pg_ctl", "pg_basebackup", "postgres"):
        if not (PG_BIN / tool).is_file():
            return f"{PG_BIN / tool} not found (set REGISTRY_TEST_PG_BIN)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' OS user to run PostgreSQL as"
    return None


def _as_postgres() -> dict[str, object]:
    """Popen arguments that run a PostgreSQL program as ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return {}
    user = pwd.getpwnam("postgres")
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _run(*args: str | Path, log: Path | None = None) -> None:
    out = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_S * 2,
        check=False,
        cwd="/",
        **_as_postgres(),  # type: ignore[call-overload]
    )
    if out.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
        raise RuntimeError(f"{Path(args[0]).name} failed: {out.stdout}{out.stderr}\n{tail}")


@dataclass
class Node:
    name: str
    data: Path
    port: int
    log: Path
    options: list[str] = field(default_factory=list)

    def conninfo(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def start(self) -> None:
        opts = " ".join(
            [
                f"-c port={self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.data.parent}",
                *self.options,
            ]
        )
        _run(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", str(_TIMEOUT_S),
             "-o", opts, "start", log=self.log)  # fmt: skip

    def running(self) -> bool:
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return False
        try:
            os.kill(int(pid_file.read_text().split()[0]), 0)
        except (ProcessLookupError, ValueError, IndexError):
            return False
        return True

    def stop_immediate(self) -> None:
        """Stop hard: every server process is killed, no shutdown checkpoint (a crash)."""
        _run(PG_BIN / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop", log=self.log)

    def promote(self) -> None:
        _run(PG_BIN / "pg_ctl", "-D", self.data, "-w", "-t", str(_TIMEOUT_S), "promote",
             log=self.log)  # fmt: skip

    def query(self, sql: str, dbname: str = "postgres") -> list[tuple[object, ...]]:
        with psycopg.connect(self.conninfo(dbname), autocommit=True, connect_timeout=3) as conn:
            cur = conn.execute(sql.encode())
            return list(cur.fetchall()) if cur.description else []


@dataclass
class Pair:
    root: Path
    primary: Node
    standby: Node

    def url(self, dbname: str) -> str:
        """The registry's multi-host URL: whichever node accepts writes."""
        return (
            f"postgresql+psycopg://postgres@/{dbname}?host=127.0.0.1:{self.primary.port}"
            f"&host=127.0.0.1:{self.standby.port}&target_session_attrs=read-write"
        )

    def fail_over(self) -> None:
        """The primary crashes; the standby is promoted and accepts writes."""
        self.primary.stop_immediate()
        self.standby.promote()
        deadline = time.monotonic() + _TIMEOUT_S
        while self.standby.query("SELECT pg_is_in_recovery()")[0][0]:
            if time.monotonic() > deadline:
                raise RuntimeError("the promoted standby is still in recovery")
            time.sleep(0.05)


def _wait_sync(primary: Node) -> None:
    sql = f"SELECT sync_state FROM pg_stat_replication WHERE application_name = '{STANDBY_NAME}'"
    deadline = time.monotonic() + _TIMEOUT_S
    while primary.query(sql) != [("sync",)]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the standby is not a synchronous standby: {primary.query(sql)}")
        time.sleep(0.05)


@contextlib.contextmanager
def running_pair() -> Iterator[Pair]:
    """A primary with a synchronous standby; both stopped and their directory removed on exit
    (also when set-up fails half-way)."""
    root = Path(tempfile.mkdtemp(prefix="registry-ha-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
    # The primary alone waits for the standby; fsync off: an immediate stop kills processes,
    # not the machine, so the page cache (and every flushed commit) survives it.
    common = ["-c fsync=off", "-c shared_buffers=16MB", "-c max_connections=100"]
    primary = Node(
        "primary",
        root / "primary",
        free_port(),
        root / "primary.log",
        [*common, f"-c synchronous_standby_names={STANDBY_NAME}", "-c synchronous_commit=on"],
    )
    standby = Node("standby", root / "standby", free_port(), root / "standby.log", common)
    try:
        _run(PG_BIN / "initdb", "-D", primary.data, "-U", "postgres", "--auth=trust",
             "--no-sync", "-E", "UTF8", "--locale=C")  # fmt: skip
        primary.start()
        _run(PG_BIN / "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U",
             "postgres", "-D", standby.data, "-X", "stream", "-R", "--checkpoint=fast",
             "--no-sync")  # fmt: skip
        # -R wrote standby.signal and a primary_conninfo; name the standby so that the
        # primary's synchronous_standby_names matches it (later lines win).
        with (standby.data / "postgresql.auto.conf").open("a") as conf:
            conf.write(
                f"primary_conninfo = 'host=127.0.0.1 port={primary.port} user=postgres "
                f"application_name={STANDBY_NAME}'\n"
            )
        standby.start()
        _wait_sync(primary)
        yield Pair(root, primary, standby)
    finally:
        for node in (primary, standby):  # shown by pytest when the test fails
            if node.log.exists():
                tail = node.log.read_text(errors="replace")[-2000:]
                log.info("%s log (tail):\n%s", node.name, tail)
        for node in (standby, primary):
            if node.running():
                with contextlib.suppress(Exception):
                    node.stop_immediate()
        shutil.rmtree(root, ignore_errors=True)
