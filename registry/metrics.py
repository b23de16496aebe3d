"""Prometheus metrics of a server process (``GET /metrics``, text exposition format); under
``serve --workers N`` a scrape answers for every worker (:mod:`registry.metrics_workers`).

What is exported (docs/observability.md lists every family):

- the registry's own counters (resolves, routing tables, controller decisions, rollbacks,
  serving reports, suppressed denials);
- HTTP requests per route template, method and status class (``registry_http_*``; counted by
  :mod:`registry.api.http_metrics`);
- the database connection pool (``registry_db_pool_*``, read from the engine's pool at scrape
  time: nothing runs per checkout);
- S3 calls per operation and outcome (``registry_s3_*``, from botocore's event hooks on the
  store's client: every operation, retries included in its latency);
- the process and the interpreter (prometheus_client's process, platform and GC collectors).

Label values are bounded: route templates (never raw paths), a fixed set of methods, status
classes, S3 operation names (botocore's model), outcomes from a fixed set.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest as _generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from registry.metrics_workers import render_merged, write_snapshot

_MAX_CACHED_CHILDREN = 10_000
# Seconds. Resolve answers in well under a millisecond; uploads and merges take seconds.
HTTP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
S3_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
UNMATCHED = "<unmatched>"
_S3_START = "registry_metrics_start"
_S3_OPERATION = "registry_metrics_operation"


_STATUS_CLASSES = ("other", "1xx", "2xx", "3xx", "4xx", "5xx")
_HTTP_LABELS = ["route", "method", "status"]
# The ``le`` values as prometheus_client writes them ("0.0005", "1.0", "+Inf").
_HTTP_BOUNDS = (*(repr(float(b)) for b in HTTP_BUCKETS), "+Inf")


class HttpCollector(Collector):
    """``registry_http_requests_total`` and ``registry_http_request_duration_seconds`` by
    route template, method and status class.

    Kept as plain lists of counts per label set rather than prometheus_client children: this
    runs on every request (resolve included), and a child's ``inc``/``observe`` take a lock and
    a few calls each. Only the event loop's thread records (ASGI middleware), so the updates need
    no lock; a scrape from another thread copies each list first and derives the count from the
    buckets, so a series is never seen with more requests than its buckets hold.
    """

    def __init__(self) -> None:
        # label set -> [count per bucket (last: above the largest bound)..., sum of seconds]
        self.series: dict[tuple[str, str, str], list[float]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (
            route,
            method,
            _STATUS_CLASSES[status // 100] if 100 <= status < 600 else "other",
        )
        counts = self.series.get(key)
        if counts is None:
            counts = self.series[key] = [0.0] * (len(HTTP_BUCKETS) + 2)
        counts[bisect_left(HTTP_BUCKETS, seconds)] += 1
        counts[-1] += seconds

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        requests = CounterMetricFamily(
            "registry_http_requests",
            "HTTP requests answered, by route template, method and status class.",
            labels=_HTTP_LABELS,
        )
        duration = HistogramMetricFamily(
            "registry_http_request_duration_seconds",
            "Time from the request's arrival to the end of its response, by route template, "
            "method and status class.",
            labels=_HTTP_LABELS,
        )
        for key, live in list(self.series.items()):
            counts = list(live)
            cumulative, buckets = 0.0, []
            for bound, n in zip(_HTTP_BOUNDS, counts[:-1], strict=True):
                cumulative += n
                buckets.append((bound, cumulative))
            requests.add_metric(list(key), cumulative)
            duration.add_metric(list(key), buckets, counts[-1])
        yield requests
        yield duration


class PoolCollector(Collector):
    """``registry_db_pool_*`` gauges read from the engine's pool at scrape time (``pool`` is set
    by the app's lifespan; pools without a queue, such as SQLite's in-memory StaticPool, export
    nothing)."""

    def __init__(self) -> None:
        self.pool: Any = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self.pool
        if pool is None or not all(
            hasattr(pool, m) for m in ("size", "checkedin", "checkedout", "overflow")
        ):
            return
        size = int(pool.size())
        figures = (
            ("registry_db_pool_size", "Connections the pool keeps (pool_size).", size),
            (
                "registry_db_pool_checked_out",
                "Connections in use by requests and workers now.",
                int(pool.checkedout()),
            ),
            (
                "registry_db_pool_checked_in",
                "Idle connections in the pool now.",
                int(pool.checkedin()),
            ),
            (
                "registry_db_pool_overflow",
                "Connections open above pool_size now (at most max_overflow).",
                max(int(pool.overflow()), 0),
            ),
            (
                "registry_db_pool_max_overflow",
                "Connections allowed above pool_size (max_overflow).",
                max(int(getattr(pool, "_max_overflow", 0)), 0),
            ),
        )
        for name, doc, value in figures:
            yield GaugeMetricFamily(name, doc, value=value)


class S3CallMetrics:
    """Count and time every call of an S3 client, by operation and outcome, through botocore's
    events (``before-call``, ``after-call``, ``after-call-error``). A call refused at once by
    the open circuit breaker (registry.storage.breaker) sends no request and is not counted
    here: it shows as a 503 in the HTTP metrics."""

    def __init__(self, calls: Counter, duration: Histogram) -> None:
        self._calls = calls
        self._duration = duration

    def attach(self, client: Any) -> None:
        events = client.meta.events
        events.register_first("before-call.s3", self._before)
        events.register("after-call.s3", self._after)
        events.register("after-call-error.s3", self._error)

    def _before(self, model: Any = None, context: Any = None, **_: Any) -> None:
        if isinstance(context, dict) and model is not None:
            context[_S3_START] = time.perf_counter()
            context[_S3_OPERATION] = str(model.name)

    def _after(self, http_response: Any = None, context: Any = None, **_: Any) -> None:
        status = int(getattr(http_response, "status_code", 0) or 0)
        if status < 300:
            outcome = "ok"
        elif status == 404:
            outcome = "not_found"
        elif status < 500:
            outcome = "client_error"
        else:
            outcome = "server_error"
        self._record(context, outcome)

    def _error(self, context: Any = None, **_: Any) -> None:
        self._record(context, "unreachable")

    def _record(self, context: Any, outcome: str) -> None:
        if not isinstance(context, dict):
            return
        started = context.pop(_S3_START, None)
        operation = context.get(_S3_OPERATION)
        if started is None or operation is None:
            return
        self._calls.labels(operation=operation, outcome=outcome).inc()
        self._duration.labels(operation=operation).observe(time.perf_counter() - started)


class Metrics:
    """One process's metrics. ``snapshots``: under ``serve --workers N``, the directory every
    worker writes its snapshot to (registry.metrics_workers); ``render`` then answers for all of
    them."""

    def __init__(self, snapshots: Path | None = None) -> None:
        self.snapshots = snapshots
        self.registry = CollectorRegistry(auto_describe=True)
        self.resolves = Counter(
            "registry_resolves",
            "Resolve answers by deployment and arm.",
            ["deployment", "arm"],
            registry=self.registry,
        )
        self.routing_tables = Counter(
            "registry_routing_tables",
            "Routing-table answers by deployment and status (200 or 304).",
            ["deployment", "status"],
            registry=self.registry,
        )
        self.controller_decisions = Counter(
            "registry_controller_decisions",
            "Rollout controller decisions by action (advance, complete, rollback, hold).",
            ["action"],
            registry=self.registry,
        )
        self.rollbacks = Counter(
            "registry_rollbacks",
            "Rollbacks by kind (automatic, manual).",
            ["kind"],
            registry=self.registry,
        )
        self.reports = Counter(
            "registry_serving_reports",
            "Serving reports accepted, by arm.",
            ["arm"],
            registry=self.registry,
        )
        self.denials_suppressed = Counter(
            "registry_audit_denials_suppressed",
            "Refused calls whose authz.denied audit event was not written (the principal was "
            "past REGISTRY_AUDIT__DENIED_EVENTS_PER_WINDOW).",
            registry=self.registry,
        )
        self.http = HttpCollector()
        self.registry.register(self.http)
        self.s3_calls = Counter(
            "registry_s3_calls",
            "S3 calls by operation and outcome (ok, not_found, client_error, server_error, "
            "unreachable).",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.s3_duration = Histogram(
            "registry_s3_call_duration_seconds",
            "S3 call time by operation (every attempt and back-off of the call; a download's "
            "body is read after it).",
            ["operation"],
            buckets=S3_BUCKETS,
            registry=self.registry,
        )
        self.pool = PoolCollector()
        self.registry.register(self.pool)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

        self._resolve_children: dict[tuple[str, str], Any] = {}

    def resolved(self, deployment: str, arm: str) -> None:
        """Count one resolve answer (the labelled child is looked up once per deployment and
        arm: ``labels()`` takes a lock and builds its key on every call)."""
        child = self._resolve_children.get((deployment, arm))
        if child is None:
            if len(self._resolve_children) >= _MAX_CACHED_CHILDREN:
                self._resolve_children.clear()
            child = self.resolves.labels(deployment=deployment, arm=arm)
            self._resolve_children[(deployment, arm)] = child
        child.inc()

    def watch_pool(self, pool: Any) -> None:
        """Export ``pool``'s figures (the engine's pool, set at start-up)."""
        self.pool.pool = pool

    def watch_s3(self, client: Any) -> None:
        """Count and time the calls of an S3 client (the artifact store's)."""
        S3CallMetrics(self.s3_calls, self.s3_duration).attach(client)

    def decision(self, action: str, deployment: str) -> None:
        self.controller_decisions.labels(action=action).inc()
        if action == "rollback":
            self.rollbacks.labels(kind="automatic").inc()

    def render(self) -> bytes:
        if self.snapshots is None:
            return _generate_latest(self.registry)
        write_snapshot(self.registry, self.snapshots)  # this worker's requests so far
        return render_merged(self.snapshots)
