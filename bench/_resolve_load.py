"""Closed-loop HTTP load for the resolve benchmark: N client processes, each with its own
client, for a fixed warm-up then a fixed measured window. Also: server CPU from /proc,
and the ceiling app under uvicorn.

Every client runs the same lean loop (``op(i)`` → ok?), so the client's own cost is the same for
every system and is part of every figure, the ceiling's included. The clients share the machine's
CPUs with the server under test: client CPU per request is reported next to the server's.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench._common import ROOT, Server, _wait_healthy, free_port, latency_summary_ms

Op = Callable[[int], bool]
MakeOp = Callable[[], tuple[Op, Callable[[], None]]]


@dataclass
class LoadResult:
    requests: int
    failures: int
    seconds: float
    latencies_s: list[float]
    client_cpu_s: float
    server_cpu_s: float | None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        per_req = max(self.requests, 1)
        return {
            "requests": self.requests,
            "failures": self.failures,
            "seconds": round(self.seconds, 3),
            "rps": round(self.rps, 1),
            **latency_summary_ms(self.latencies_s),
            "client_cpu_us_per_req": round(self.client_cpu_s / per_req * 1e6, 1),
            "server_cpu_us_per_req": (
                None if self.server_cpu_s is None else round(self.server_cpu_s / per_req * 1e6, 1)
            ),
        }


# --------------------------------------------------------------------------- CPU accounting


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (``mlflow server`` runs its worker as a child)."""
    tree = _children()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(tree.get(p, []))
    return out


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds of ``pids`` (from /proc/<pid>/stat)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


# --------------------------------------------------------------------------- load loop


@dataclass
class _Ready:
    error: str | None


@dataclass
class _Done:
    latencies_s: list[float]
    failures: int
    last_finish: float
    cpu_s: float


def _client(
    make_op: MakeOp, index: int, go: Any, start: Any, out: Any, timing: tuple[float, float]
) -> None:
    """One client process: set up, report ready, wait for the common start, warm up, then time
    every call started within the window. Sends its latencies and its own CPU in the window."""
    warmup_s, duration_s = timing
    try:
        op, close = make_op()
    except BaseException as exc:  # reported to the parent, which raises it
        out.put(_Ready(f"{type(exc).__name__}: {exc}"))
        return
    out.put(_Ready(None))
    mine: list[float] = []
    failed = 0
    finished = 0.0
    i = index * 7919  # each client walks its own part of the key list
    clock = time.perf_counter  # CLOCK_MONOTONIC: one clock for every process
    cpu0 = cpu1 = 0.0
    try:
        if not go.wait(timeout=120):
            return
        window = start.value + warmup_s
        end = window + duration_s
        while clock() < window:
            with contextlib.suppress(Exception):
                op(i)
            i += 1
        cpu0 = time.process_time()
        while True:
            t0 = clock()
            if t0 >= end:
                break
            try:
                ok = op(i)
            except Exception:
                ok = False
            finished = clock()
            mine.append(finished - t0)
            failed += not ok
            i += 1
        cpu1 = time.process_time()
    finally:
        close()
        out.put(_Done(mine, failed, finished, cpu1 - cpu0))


def run_load(
    make_op: MakeOp,
    clients: int,
    warmup_s: float,
    duration_s: float,
    server_pids: Sequence[int] = (),
) -> LoadResult:
    """``clients`` processes (forked; ``make_op()`` runs in each) call ``op(i)`` back to back:
    ``warmup_s`` untimed, then every call started within ``duration_s`` is timed. Throughput =
    timed calls / (last finish - window start). Exceptions and ``False`` count as failures;
    nothing aborts the loop. Processes rather than threads: client threads queue on one GIL, and
    that queue (not the server) set the p99 with 8 clients."""
    ctx = multiprocessing.get_context("fork")
    go, start, out = ctx.Event(), ctx.Value("d", 0.0), ctx.Queue()
    procs = [
        ctx.Process(
            target=_client, args=(make_op, k, go, start, out, (warmup_s, duration_s)), daemon=True
        )
        for k in range(clients)
    ]
    for p in procs:
        p.start()
    try:
        errors = [r.error for r in (out.get(timeout=120) for _ in procs) if r.error]
        if errors:
            raise RuntimeError(f"client set-up failed: {errors[0]}")
        start.value = time.perf_counter()
        go.set()
        window = start.value + warmup_s
        time.sleep(max(0.0, window - time.perf_counter()))
        server0 = cpu_seconds(server_pids)
        time.sleep(max(0.0, window + duration_s - time.perf_counter()))
        server1 = cpu_seconds(server_pids)
        done: list[_Done] = [out.get(timeout=duration_s + 120) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    latencies = [lat for d in done for lat in d.latencies_s]
    return LoadResult(
        requests=len(latencies),
        failures=sum(d.failures for d in done),
        seconds=max(max(d.last_finish for d in done) - window, 1e-9),
        latencies_s=latencies,
        client_cpu_s=sum(d.cpu_s for d in done),
        server_cpu_s=(server1 - server0) if server_pids else None,
    )


def httpx_op(
    base_url: str, paths: Sequence[str], headers: dict[str, str], keepalive: bool
) -> MakeOp:
    """One ``httpx.Client`` per client; keep-alive reuses its one connection, otherwise every
    request opens a new TCP connection (``Connection: close``, no idle connections kept)."""

    def make() -> tuple[Op, Callable[[], None]]:
        hdrs = dict(headers)
        if not keepalive:
            hdrs["Connection"] = "close"
        client = httpx.Client(
            base_url=base_url,
            headers=hdrs,
            timeout=30.0,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1 if keepalive else 0),
        )
        n = len(paths)

        def op(i: int) -> bool:
            return client.get(paths[i % n]).status_code == 200

        return op, client.close

    return make


# --------------------------------------------------------------------------- ceiling server


def start_ceiling(tmp: Path) -> Server:
    """``bench._resolve_ceiling:app`` under uvicorn, with the same settings as
    ``bench._common.start_registry`` (one worker, loop/http "auto": uvloop/httptools)."""
    log = tmp / "ceiling.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench._resolve_ceiling:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--workers",
            "1",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    return Server(proc, url, log, _wait_healthy(proc, url, log, "/healthz"))
