"""Merging the workers' metrics snapshots (registry.metrics_workers): counters and histograms
summed (a dead worker's kept), gauges one series per live worker, ``_created`` the earliest,
files replaced whole. Real prometheus_client registries and real processes (a dead pid is one of
a child that has exited); the end-to-end check with ``serve --workers 3`` is in
tests/catalog/test_serve_workers.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from registry.metrics import Metrics
from registry.metrics_workers import MergedSnapshots, SnapshotWriter, render_merged, write_snapshot
from tests.fixtures.metrics import families


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _worker(requests: int, pool: float, seconds: float) -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("app_requests", "Requests.", ["route"], registry=registry).labels("/a").inc(requests)
    Gauge("app_pool", "Pool.", registry=registry).set(pool)
    Histogram("app_seconds", "Time.", buckets=(0.1, 1), registry=registry).observe(seconds)
    return registry


def _value(samples: list, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    (found,) = [s.value for s in samples if s.name == name and s.labels == labels]
    return float(found)


def test_counters_and_histograms_add_up_and_gauges_stay_per_worker(tmp_path: Path) -> None:
    me, other = os.getpid(), os.getppid()  # two live processes
    write_snapshot(_worker(3, 4, 0.05), tmp_path, pid=me)
    write_snapshot(_worker(5, 2, 0.5), tmp_path, pid=other)
    found = families(render_merged(tmp_path).decode())

    assert _value(found["app_requests"], "app_requests_total", route="/a") == 8
    seconds = found["app_seconds"]
    assert _value(seconds, "app_seconds_bucket", le="0.1") == 1
    assert _value(seconds, "app_seconds_bucket", le="1.0") == 2
    assert _value(seconds, "app_seconds_count") == 2
    assert _value(seconds, "app_seconds_sum") == 0.55
    assert {s.labels["worker"]: s.value for s in found["app_pool"]} == {
        str(me): 4,
        str(other): 2,
    }


def test_a_dead_workers_counts_stay_and_its_gauges_go(tmp_path: Path) -> None:
    dead = _dead_pid()
    write_snapshot(_worker(3, 4, 0.05), tmp_path, pid=os.getpid())
    write_snapshot(_worker(5, 2, 0.5), tmp_path, pid=dead)
    found = families(render_merged(tmp_path).decode())
    assert _value(found["app_requests"], "app_requests_total", route="/a") == 8
    assert [s.labels["worker"] for s in found["app_pool"]] == [str(os.getpid())]


def test_created_keeps_the_earliest(tmp_path: Path) -> None:
    first, second = _worker(1, 0, 0), _worker(1, 0, 0)
    write_snapshot(first, tmp_path, pid=os.getpid())
    write_snapshot(second, tmp_path, pid=os.getppid())
    created = [
        s.value
        for registry in (first, second)
        for f in registry.collect()
        for s in f.samples
        if s.name == "app_requests_created"
    ]
    # (The text format leaves _created out; OpenMetrics and the collector keep it.)
    (merged,) = [f for f in MergedSnapshots(tmp_path).collect() if f.name == "app_requests"]
    assert _value(merged.samples, "app_requests_created", route="/a") == min(created)


def test_unreadable_snapshots_are_skipped_and_writes_leave_no_scratch(tmp_path: Path) -> None:
    (tmp_path / "123.json").write_text('{"pid": 123, "fam')  # torn: never produced by a write
    write_snapshot(_worker(2, 1, 0.1), tmp_path)
    write_snapshot(_worker(7, 1, 0.1), tmp_path)  # the same process again: replaces its file
    found = families(render_merged(tmp_path).decode())
    assert _value(found["app_requests"], "app_requests_total", route="/a") == 7
    assert {p.name for p in tmp_path.iterdir()} == {"123.json", f"{os.getpid()}.json"}


def test_a_workers_render_counts_its_requests_so_far(tmp_path: Path) -> None:
    metrics = Metrics(tmp_path)
    metrics.http.observe("/api/v1/namespaces", "GET", 200, 0.01)
    write_snapshot(_worker(1, 1, 0.1), tmp_path, pid=os.getppid())
    first = families(metrics.render().decode())
    metrics.http.observe("/api/v1/namespaces", "GET", 200, 0.01)
    second = families(metrics.render().decode())
    labels = {"route": "/api/v1/namespaces", "method": "GET", "status": "2xx"}
    assert _value(first["registry_http_requests"], "registry_http_requests_total", **labels) == 1
    assert _value(second["registry_http_requests"], "registry_http_requests_total", **labels) == 2
    assert "app_requests" in second  # the other worker's families too
    pids = {s.labels["worker"] for s in second["process_resident_memory_bytes"]}
    assert pids == {str(os.getpid())}  # the other snapshot has no process collector


def test_the_writer_leaves_a_final_snapshot_when_stopped(tmp_path: Path) -> None:
    registry = _worker(1, 1, 0.1)
    writer = SnapshotWriter(registry, tmp_path, interval_s=60)
    writer.start()
    Counter("late", "Counted after the last periodic write.", registry=registry).inc()
    writer.stop()
    assert "late" in families(render_merged(tmp_path).decode())
