"""``serve --workers 3``: one real server of three uvicorn worker processes on a database of its
own, controller and checkpointer on. Concurrent registrations land in any worker and still get
gap-free numbers; the rollout controller and the audit checkpointer each run in exactly one
worker (the lock's holder, found in the operating system's lock table or PostgreSQL's); the
audit chain the workers wrote together verifies against the checkpoints one of them signed."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url, text

from registry.audit.checkpoints import LEADER_LOCK_KEY as CHECKPOINT_KEY
from registry.db import migrate
from registry.db.engine import make_engine
from registry.settings import DatabaseSettings
from registry.traffic.controller import LEADER_LOCK_KEY as CONTROLLER_KEY
from tests.catalog.test_concurrency import _client, _push, _run, _variant
from tests.factories.catalog import create_namespace, register_base
from tests.fixtures.app import bootstrap
from tests.fixtures.db import drop_database, new_database_url
from tests.fixtures.metrics import families, scrape
from tests.fixtures.peft import PEFT_FIXTURES
from tests.fixtures.server import LiveServer, free_port, server_env, start_server, stop_server

WORKERS = 3
PUSHES = 12


def _children(pid: int) -> set[int]:
    """The pids whose parent is ``pid``, but for multiprocessing's resource tracker: uvicorn's
    worker processes."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:  # gone meanwhile
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"resource_tracker" not in cmdline:
                found.add(int(entry))
    return found


def _flock_holders(path: str) -> list[int]:
    """Pids holding a flock on ``path`` (from /proc/locks, by inode)."""
    inode = os.stat(path).st_ino
    holders = []
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "FLOCK" in fields and "->" not in fields:
            pid, dev_inode = int(fields[4]), fields[5]
            if int(dev_inode.rsplit(":", 1)[1]) == inode:
                holders.append(pid)
    return holders


def _lock_holders(url: str, key: int, name: str) -> list[int]:
    """Pids of the processes holding the leader lock ``key`` named ``name``."""
    if url.startswith("sqlite"):
        path = f"{make_url(url).database}.leader-{key:x}"
        return _flock_holders(path) if os.path.exists(path) else []
    engine = make_engine(DatabaseSettings(url=url))
    try:
        with engine.connect() as conn:
            labels = conn.scalars(
                text(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a "
                    "USING (pid) WHERE l.locktype = 'advisory' AND l.granted "
                    "AND a.application_name LIKE :name"
                ),
                {"name": f"{name} %"},
            ).all()
    finally:
        engine.dispose()
    return [int(label.rsplit(":", 1)[1]) for label in labels]


def _until(check: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(0.1)


@pytest.fixture
def workers_server(tmp_path: Path) -> Iterator[tuple[LiveServer, str, int]]:
    url = new_database_url(tmp_path, "registry_workers")
    migrate.upgrade(url)
    env = server_env(
        url,
        tmp_path / "artifacts",
        REGISTRY_CONTROLLER__ENABLED="true",
        REGISTRY_CONTROLLER__INTERVAL_S="0.2",
        REGISTRY_AUDIT__CHECKPOINT_INTERVAL_S="0.3",
        REGISTRY_METRICS__HOST="127.0.0.1",
        REGISTRY_METRICS__PORT=str(free_port()),
    )
    proc, base_url = start_server(env, tmp_path / "server.log", workers=WORKERS, ready_s=60)
    try:
        token = bootstrap(url, f"workers-{uuid.uuid4().hex[:8]}")
        yield LiveServer(url=base_url, token=token, env=env), url, proc.pid
    finally:
        stop_server(proc)
        drop_database(url)


def test_three_workers_number_gap_free_and_elect_one_controller_and_checkpointer(
    workers_server: tuple[LiveServer, str, int],
) -> None:
    server, url, parent = workers_server
    _until(lambda: len(_children(parent)) == WORKERS, f"{WORKERS} worker processes")
    workers = _children(parent)
    with _client(server) as c:
        ns = create_namespace(c)
        base = register_base(c, PEFT_FIXTURES / "bases" / "tiny-gpt2")

    results = _run(PUSHES, lambda i: _push(server, ns, "multi", _variant(i), base))
    assert [r.status_code for r in results] == [201] * PUSHES, [r.text for r in results]
    assert sorted(r.json()["version"] for r in results) == list(range(1, PUSHES + 1))

    for key, name in (
        (CONTROLLER_KEY, "adapter-registry-controller"),
        (CHECKPOINT_KEY, "adapter-registry-checkpointer"),
    ):

        def elected(key: int = key, name: str = name) -> bool:
            return len(_lock_holders(url, key, name)) == 1

        _until(elected, f"{name} elected")
        (holder,) = _lock_holders(url, key, name)
        assert holder in workers, (name, holder, workers)

    with _client(server) as c:

        def anchored() -> bool:
            r = c.get("/api/v1/audit/verify", params={"require_checkpoint": "true"})
            return r.status_code == 200

        _until(anchored, "a signed checkpoint")
        report = c.get("/api/v1/audit/verify").json()
    assert report["ok"] is True, report
    assert report["checkpoints"] >= 1, report


def _namespace_gets(text: str) -> float:
    return sum(
        s.value
        for s in families(text)["registry_http_requests"]
        if s.labels == {"route": "/api/v1/namespaces", "method": "GET", "status": "2xx"}
    )


def test_metrics_answer_for_every_worker_whichever_is_scraped(
    workers_server: tuple[LiveServer, str, int],
) -> None:
    """The parent's token-free listener and each worker's /metrics give the sum of the workers'
    counts (a counter never goes back from one scrape to the next, whichever worker answers),
    gauges one series per live worker; a killed worker's counts stay, its gauges go with it."""
    server, _, parent = workers_server
    _until(lambda: len(_children(parent)) == WORKERS, f"{WORKERS} worker processes")
    listener = f"http://127.0.0.1:{server.env['REGISTRY_METRICS__PORT']}/metrics"
    requests = 40
    for _ in range(requests):  # a connection each: the kernel spreads them over the workers
        with _client(server) as c:
            assert c.get("/api/v1/namespaces").status_code == 200

    # Other workers' figures are at most one snapshot interval old.
    _until(lambda: _namespace_gets(scrape(listener)) == requests, "every request counted")
    seen = []
    for _ in range(12):
        with _client(server) as c:
            seen.append(_namespace_gets(scrape(f"{server.url}/metrics", server.token)))
    assert seen == [requests] * len(seen)

    def gauge_workers() -> set[int]:
        pool = families(scrape(listener))["process_resident_memory_bytes"]
        return {int(s.labels["worker"]) for s in pool}

    _until(lambda: gauge_workers() == _children(parent), "one gauge series per worker")
    victim = sorted(_children(parent))[0]
    os.kill(victim, signal.SIGKILL)
    _until(
        lambda: victim not in _children(parent) and len(_children(parent)) == WORKERS,
        "uvicorn replaced the killed worker",
    )
    _until(lambda: gauge_workers() == _children(parent), "the new worker's gauges")
    assert _namespace_gets(scrape(listener)) == requests


def test_workers_default_to_one_per_core() -> None:
    from typer.testing import CliRunner

    from registry.cli import app

    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "one per core" in result.output
    assert "/metrics" in result.output
