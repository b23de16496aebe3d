"""Closed-loop HTTP load for the resolve benchmark: N client threads in this process, each with
its own client, for a fixed warm-up then a fixed measured window. Also: server CPU from /proc,
and the ceiling app under uvicorn.

Every thread runs the same lean loop (``op(i)`` → ok?), so the client's own cost is the same for
every system and is part of every figure, the ceiling's included. The clients share the machine's
CPUs with the server under test: client CPU per request is reported next to the server's.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
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


def run_load(
    make_op: MakeOp,
    clients: int,
    warmup_s: float,
    duration_s: float,
    server_pids: Sequence[int] = (),
) -> LoadResult:
    """``clients`` threads call ``op(i)`` back to back: ``warmup_s`` untimed, then every call
    started within ``duration_s`` is timed. Throughput = timed calls / (last finish - window
    start). Exceptions and ``False`` count as failures; nothing aborts the loop."""
    start = [0.0]
    barrier = threading.Barrier(clients, action=lambda: start.__setitem__(0, time.perf_counter()))
    lock = threading.Lock()
    latencies: list[float] = []
    failures = [0]
    last_finish = [0.0]
    setup_errors: list[BaseException] = []

    def body(index: int) -> None:
        try:
            op, close = make_op()
        except BaseException as exc:
            setup_errors.append(exc)
            barrier.abort()
            return
        mine: list[float] = []
        failed = 0
        finished = 0.0
        i = index * 7919  # each thread walks its own part of the key list
        clock = time.perf_counter
        try:
            barrier.wait(timeout=120)
            window = start[0] + warmup_s
            end = window + duration_s
            while clock() < window:
                with contextlib.suppress(Exception):
                    op(i)
                i += 1
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
        except threading.BrokenBarrierError:
            pass
        finally:
            close()
            with lock:
                latencies.extend(mine)
                failures[0] += failed
                last_finish[0] = max(last_finish[0], finished)

    threads = [threading.Thread(target=body, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    # Sample CPU at the window's edges (the threads are synchronised on ``start``).
    while start[0] == 0.0 and not setup_errors:
        time.sleep(0.005)
    if setup_errors:
        for t in threads:
            t.join(timeout=30)
        raise setup_errors[0]
    window = start[0] + warmup_s
    time.sleep(max(0.0, window - time.perf_counter()))
    client0, server0 = time.process_time(), cpu_seconds(server_pids)
    time.sleep(max(0.0, window + duration_s - time.perf_counter()))
    client1, server1 = time.process_time(), cpu_seconds(server_pids)
    for t in threads:
        t.join(timeout=duration_s + 120)
    return LoadResult(
        requests=len(latencies),
        failures=failures[0],
        seconds=max(last_finish[0] - window, 1e-9),
        latencies_s=latencies,
        client_cpu_s=client1 - client0,
        server_cpu_s=(server1 - server0) if server_pids else None,
    )


def httpx_op(
    base_url: str, paths: Sequence[str], headers: dict[str, str], keepalive: bool
) -> MakeOp:
    """One ``httpx.Client`` per thread; keep-alive reuses its one connection, otherwise every
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
