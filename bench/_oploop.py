"""A fixed number of operations spread over N concurrent clients: threads of this process (for
in-process work such as audit appends, whose concurrency is the point) or forked processes (for
HTTP clients, whose own Python work must not queue on one GIL and pace the server)."""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
import time
from collections.abc import Callable
from typing import Any

MakeWorker = Callable[[], tuple[Callable[[int], None], Callable[[], None]]]


def run_threads(n_ops: int, threads: int, make_worker: MakeWorker) -> tuple[float, list[float]]:
    """Run ``n_ops`` operations spread over ``threads`` threads; returns (wall s, latencies).

    ``make_worker()`` is called once per thread (in the thread) and returns ``(op, close)``;
    ``op(i)`` performs operation ``i``. Operations are handed out from a shared counter.
    """
    lock = threading.Lock()
    next_op = [0]
    latencies: list[float] = []
    errors: list[BaseException] = []
    ready = threading.Barrier(threads + 1)

    def body() -> None:
        op, close = make_worker()
        mine: list[float] = []
        try:
            ready.wait(timeout=120)
            for _ in range(n_ops):  # bounded: at most n_ops per thread
                with lock:
                    i = next_op[0]
                    next_op[0] += 1
                if i >= n_ops:
                    break
                t0 = time.perf_counter()
                op(i)
                mine.append(time.perf_counter() - t0)
        except BaseException as exc:  # surfaced after join
            errors.append(exc)
        finally:
            close()
            with lock:
                latencies.extend(mine)

    workers = [threading.Thread(target=body, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()
    ready.wait(timeout=120)
    t0 = time.perf_counter()
    for w in workers:
        w.join(timeout=1800)
    wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return wall, latencies


def run_processes(n_ops: int, clients: int, make_worker: MakeWorker) -> tuple[float, list[float]]:
    """``run_threads`` with each client a forked process: ``make_worker()`` runs in the child,
    operations are handed out from a shared counter, latencies come back through a queue.
    Raises the first client's error (after every client has stopped)."""
    ctx = multiprocessing.get_context("fork")
    counter = ctx.Value("l", 0)
    ready = ctx.Barrier(clients + 1)
    out: Any = ctx.Queue()

    def body() -> None:
        mine: list[float] = []
        error: str | None = None
        close: Callable[[], None] = lambda: None  # noqa: E731
        try:
            op, close = make_worker()
            ready.wait(timeout=120)
            for _ in range(n_ops):  # bounded: at most n_ops per client
                with counter.get_lock():
                    i = counter.value
                    counter.value += 1
                if i >= n_ops:
                    break
                t0 = time.perf_counter()
                op(i)
                mine.append(time.perf_counter() - t0)
        except BaseException as exc:  # reported to the parent, which raises it
            error = f"{type(exc).__name__}: {exc}"
            ready.abort()
        finally:
            close()
            out.put((error, mine))

    procs = [ctx.Process(target=body, daemon=True) for _ in range(clients)]
    for p in procs:
        p.start()
    # A client that fails to start breaks the barrier; its error comes through the queue.
    with contextlib.suppress(threading.BrokenBarrierError):
        ready.wait(timeout=120)
    t0 = time.perf_counter()
    done = [out.get(timeout=1800) for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join(timeout=30)
    errors = [e for e, _ in done if e]
    if errors:
        raise RuntimeError(f"a client failed: {errors[0]}")
    return wall, [lat for _, lats in done for lat in lats]
