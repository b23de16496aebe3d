"""High availability on one machine: three server processes on a PostgreSQL primary with a
synchronous standby (tests/ha/pg_pair.py, the test's own, on free ports) and S3 on moto's
real S3 server, reached through a multi-host URL with ``target_session_attrs=read-write``.

A canary is in progress and clients keep registering versions. The replica leading the rollout
controller is SIGKILLed, the primary is stopped hard and the standby promoted. Afterwards:
no acknowledged registration is lost and version numbers have no gaps; no request answered
500 (outages are 503s the clients retried); the audit chain verifies; the controller leads on
a surviving replica and advances the canary; both survivors resolve the same revision.

Runs on the PostgreSQL leg of ``make test`` (``REGISTRY_TEST_DIALECT=postgresql``); with
``CI=true`` a missing PostgreSQL installation fails instead of skipping.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry.db import migrate
from registry.traffic.controller import LEADER_LOCK_KEY
from tests.factories.catalog import unique
from tests.factories.governance import auth
from tests.fixtures.app import bootstrap
from tests.fixtures.db import dialect
from tests.fixtures.s3 import S3Server
from tests.fixtures.server import server_env, start_server, stop_server
from tests.ha.pg_pair import Node, Pair, missing, running_pair
from tests.ha.writers import Writer, run_writers
from tests.traffic.test_rollout_e2e import World, _apply_fast_plans, _ok

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.s3,
    pytest.mark.slow,
    pytest.mark.skipif(
        dialect() != "postgresql", reason="runs on the PostgreSQL leg (own primary + standby)"
    ),
]

log = logging.getLogger("tests.ha")  # figures and logs: shown on failure, or with -o log_cli=true

INTERVAL_S = 0.2  # controller rounds and routing polls
DEADLINE_S = 90.0  # liveness bound for the whole scenario (it takes ~15-25 s)
WRITERS = 3


@dataclass
class Replicas:
    urls: list[str]
    procs: list[subprocess.Popen[bytes]]
    admin: str


@pytest.fixture
def pair() -> Iterator[Pair]:
    why = missing()
    if why is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the HA test needs PostgreSQL 15 binaries in CI: {why}", pytrace=False)
        pytest.skip(why)
    with running_pair() as made:
        yield made


@pytest.fixture
def replicas(
    pair: Pair, moto_s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> Iterator[Replicas]:
    pair.primary.query("CREATE DATABASE registry")
    url = pair.url("registry")
    migrate.upgrade(url)
    admin = bootstrap(url, "admin")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        envs = [
            server_env(
                url,
                tmp_path / "artifacts",
                REGISTRY_STORAGE__BACKEND="s3",
                REGISTRY_STORAGE__BUCKET=s3_bucket,
                REGISTRY_STORAGE__ENDPOINT_URL=moto_s3_server.endpoint,
                REGISTRY_STORAGE__ACCESS_KEY_ID=moto_s3_server.access_key_id,
                REGISTRY_STORAGE__SECRET_ACCESS_KEY=moto_s3_server.secret_access_key,
                REGISTRY_AUDIT__SIGNING_KEY_PATH=str(tmp_path / "audit.key"),
                REGISTRY_CONTROLLER__INTERVAL_S=str(INTERVAL_S),
                REGISTRY_ROLLOUT__ROUTING_POLL_S=str(INTERVAL_S),
                REGISTRY_AUTH__TOKEN_CACHE_S="0",
                REGISTRY_DATABASE__POOL_SIZE="4",
                REGISTRY_DATABASE__CONNECT_TIMEOUT_S="2",
            )
            for _ in range(3)
        ]
        # Started side by side: one start-up takes seconds on a busy machine. The pool waits
        # for every start; the ones that came up are stopped below even if another failed.
        with ThreadPoolExecutor(len(envs)) as pool:
            futures = [
                pool.submit(start_server, env, tmp_path / f"replica-{i}.log", ready_s=180)
                for i, env in enumerate(envs)
            ]
        started = [f.result() for f in futures if f.exception() is None]
        procs = [proc for proc, _ in started]
        for f in futures:
            if f.exception() is not None:
                raise RuntimeError("a replica did not start") from f.exception()
        yield Replicas([url for _, url in started], procs, admin)
    finally:
        for proc in procs:  # all shut down side by side, then each waited for (or killed)
            proc.terminate()
        for proc in procs:
            stop_server(proc)
        for path in sorted(tmp_path.glob("replica-*.log")):
            log.info("%s (tail):\n%s", path.name, path.read_text(errors="replace")[-3000:])


def _leader_pid(node: Node) -> int | None:
    """The OS pid of the replica whose connection holds the controller's leader lock."""
    rows = node.query(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
        f"WHERE l.locktype = 'advisory' AND l.granted AND l.objid = {LEADER_LOCK_KEY & 0xFFFFFFFF}"
        f" AND l.classid = {LEADER_LOCK_KEY >> 32}",
        dbname="registry",
    )
    if not rows:
        return None
    return int(str(rows[0][0]).rsplit(":", 1)[1])


def _until(check: Any, what: str | Callable[[], str], bound_s: float = 30.0) -> float:
    """Poll ``check`` until it is truthy (a liveness bound, not a timed assertion)."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > bound_s:
            raise AssertionError(f"{what if isinstance(what, str) else what()}: not in {bound_s} s")
        time.sleep(0.02)
    return time.monotonic() - start


def _get(url: str, path: str, token: str, **params: str) -> httpx.Response | None:
    try:
        return httpx.get(url + path, params=params, headers=auth(token), timeout=10)
    except httpx.TransportError:
        return None


def test_failover_keeps_writes_audit_and_the_canary(pair: Pair, replicas: Replicas) -> None:
    deadline = time.monotonic() + DEADLINE_S
    with httpx.Client(base_url=replicas.urls[0], headers=auth(replicas.admin), timeout=60) as c:
        w = World(c, replicas.admin)
        _apply_fast_plans(c)
        v1 = w.push(0.80)
        dep = unique("dep")
        body = {"name": dep, "base": w.base, "adapter": f"{w.ns}/bot"}
        _ok(c.post("/api/v1/deployments", json=body, headers=w.h("operator")), 201)
        assert w.promote(v1, dep)["state"] == "completed"
        assert w.promote(w.push(0.85), dep)["state"] == "rolling_out"  # 5 %, no reports: holds
        canary = _ok(c.get(f"/api/v1/deployments/{dep}"))
        assert canary["share_bp"] == 500
    pids = [p.pid for p in replicas.procs]
    _until(lambda: _leader_pid(pair.primary) in pids, "a replica leads the controller")
    leader = pids.index(_leader_pid(pair.primary) or 0)
    survivors = [u for i, u in enumerate(replicas.urls) if i != leader]

    writers = [
        Writer(f"w{i}", w.ns, w.base, w.tokens["developer"], list(replicas.urls))
        for i in range(WRITERS)
    ]
    stop = threading.Event()
    threads = run_writers(writers, stop, deadline)
    try:
        _until(lambda: all(len(x.acked) >= 2 for x in writers), "writes before the failover")
        before = {x.name: len(x.acked) for x in writers}
        replicas.procs[leader].send_signal(signal.SIGKILL)
        replicas.procs[leader].wait(timeout=10)
        started = time.monotonic()
        pair.fail_over()
        _until(
            lambda: all(len(x.acked) >= before[x.name] + 2 for x in writers),
            lambda: (
                "writes after the failover: "
                + "; ".join(f"{x.name} {len(x.acked)} {x.last_retry}" for x in writers)
            ),
            bound_s=60,
        )
        log.warning(
            "writes acknowledged again %.2f s after the failover", time.monotonic() - started
        )
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)

    for x in writers:
        assert not x.errors, (x.name, x.errors)
    # The controller leads on a survivor of the new primary and takes the canary's next step.
    with httpx.Client(base_url=survivors[0], headers=auth(replicas.admin), timeout=30) as c:
        _check_writes(c, w.ns, writers)
        verified = _ok(c.get("/api/v1/audit/verify"))
        assert verified["ok"], verified
        rev = _ok(c.get(f"/api/v1/deployments/{dep}"))["revision"]
        assert rev == canary["revision"]
        w.c = c
        w.report(dep, rev, "stable", 2000, 20)
        w.report(dep, rev, "candidate", 400, 4)
        took = _until(
            lambda: _ok(c.get(f"/api/v1/deployments/{dep}"))["revision"] > rev,
            "the controller's step after the failover",
        )
        log.warning("the controller stepped %.2f s after the reports", took)
        stepped = _ok(c.get(f"/api/v1/deployments/{dep}"))
        assert stepped["share_bp"] == 5000
        decisions = _ok(c.get(f"/api/v1/deployments/{dep}/decisions"))["items"]
        assert decisions[0]["action"] == "advance"
    new_leader = _leader_pid(pair.standby)
    assert new_leader in pids, (new_leader, pids)
    assert new_leader != pids[leader]
    _check_resolve_agrees(survivors, replicas.admin, dep, stepped["revision"])


def _check_writes(c: httpx.Client, ns: str, writers: list[Writer]) -> None:
    """Every acknowledged version is there with the digest acknowledged; numbers have no gaps."""
    for x in writers:
        items = _ok(c.get(f"/api/v1/adapters/{ns}/{x.name}/versions", params={"limit": 200}))
        stored = {v["version"]: v["digest"] for v in items["items"]}
        assert sorted(stored) == list(range(1, len(stored) + 1)), (x.name, sorted(stored))
        lost = {v: d for v, d in x.acked.items() if stored.get(v) != d}
        assert not lost, (x.name, lost, stored)
        log.warning(
            "%s: %s acknowledged, %s stored, %s retries (last: %s)",
            x.name,
            len(x.acked),
            len(stored),
            x.retries,
            x.last_retry,
        )


def _check_resolve_agrees(urls: list[str], token: str, dep: str, revision: int) -> None:
    """Every survivor resolves the new revision (polled; the time it took is printed)."""

    def revisions() -> set[object]:
        seen = set()
        for url in urls:
            r = _get(url, f"/api/v1/deployments/{dep}/resolve", token, key="probe")
            seen.add(r.json()["revision"] if r is not None and r.status_code == 200 else None)
        return seen

    took = _until(lambda: revisions() == {revision}, "resolve agrees on the survivors", 10)
    log.warning("resolve agreed on %s replicas %.3f s after the step was visible", len(urls), took)
