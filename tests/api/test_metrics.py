"""GET /metrics on a real server process: the main port (token required, as every non-health
route) and the token-free listener on REGISTRY_METRICS__PORT; the families it exports, the
per-route histogram, bounded labels, DB pool and S3 call metrics."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from sqlalchemy import text

from registry.db.engine import make_engine
from registry.metrics import UNMATCHED, Metrics
from registry.settings import DatabaseSettings
from tests.fixtures.metrics import MeteredServer, families, metered_server, scrape
from tests.fixtures.s3 import S3Server, client_for
from tests.fixtures.server import free_port

pytestmark = pytest.mark.s3

FAMILIES = {
    # HTTP per route
    "registry_http_requests",
    "registry_http_request_duration_seconds",
    # process and interpreter
    "process_cpu_seconds",
    "process_resident_memory_bytes",
    "process_open_fds",
    "python_info",
    "python_gc_collections",
    # database pool
    "registry_db_pool_size",
    "registry_db_pool_checked_out",
    "registry_db_pool_checked_in",
    "registry_db_pool_overflow",
    # S3 calls
    "registry_s3_calls",
    "registry_s3_call_duration_seconds",
    # the registry's own
    "registry_resolves",
    "registry_controller_decisions",
}


@pytest.fixture(scope="module")
def metered(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, moto_s3_server: S3Server
) -> Iterator[MeteredServer]:
    with metered_server(database_url, tmp_path_factory.mktemp("metered"), moto_s3_server) as m:
        yield m


def _value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for samples in families(text).values():
        for s in samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def test_both_ports_export_every_family(metered: MeteredServer) -> None:
    server = metered.server
    assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200  # an S3 call
    on_port = families(scrape(metered.metrics_url))
    on_main = families(scrape(f"{server.url}/metrics", server.token))
    assert set(on_port) >= FAMILIES, sorted(FAMILIES - set(on_port))
    assert set(on_main) >= FAMILIES, sorted(FAMILIES - set(on_main))
    assert on_port["registry_db_pool_size"][0].value >= 1
    assert any(s.labels.get("outcome") == "ok" for s in on_port["registry_s3_calls"])


def test_the_route_histogram_counts_a_request_under_its_template(metered: MeteredServer) -> None:
    server = metered.server
    auth = {"Authorization": f"Bearer {server.token}"}
    name = f"nothing-{uuid.uuid4().hex[:8]}"
    route = "/api/v1/deployments/{name}/resolve"  # answered by the serving fast path
    before = scrape(metered.metrics_url)
    r = httpx.get(f"{server.url}/api/v1/deployments/{name}/resolve?key=k", headers=auth)
    assert r.status_code == 404
    r = httpx.get(f"{server.url}/api/v1/namespaces", headers=auth)
    assert r.status_code == 200
    after = scrape(metered.metrics_url)
    count = "registry_http_request_duration_seconds_count"
    for template, status in ((route, "4xx"), ("/api/v1/namespaces", "2xx")):
        labels = {"route": template, "method": "GET", "status": status}
        assert _value(after, count, **labels) == _value(before, count, **labels) + 1
        assert (
            _value(after, "registry_http_requests_total", **labels)
            == _value(before, "registry_http_requests_total", **labels) + 1
        )
    assert name not in after  # raw paths never become label values


def test_unmatched_paths_and_odd_methods_share_one_label(metered: MeteredServer) -> None:
    server = metered.server
    before = scrape(metered.metrics_url)
    for i in range(5):
        assert httpx.get(f"{server.url}/no/such/{uuid.uuid4().hex}/{i}").status_code in (401, 404)
    r = httpx.request("PROPFIND", f"{server.url}/api/v1/namespaces")
    assert r.status_code in (401, 405)
    after = scrape(metered.metrics_url)
    count = "registry_http_requests_total"
    unmatched = {"route": UNMATCHED, "method": "GET", "status": "4xx"}
    assert _value(after, count, **unmatched) == _value(before, count, **unmatched) + 5
    # A request refused before routing (no token) is still labelled by the route it names.
    assert _value(after, count, route="/api/v1/namespaces", method="other", status="4xx") >= 1
    assert "/no/such/" not in after


def test_main_port_metrics_need_a_token(metered: MeteredServer) -> None:
    r = httpx.get(f"{metered.server.url}/metrics")
    assert r.status_code == 401
    assert r.json()["error"] == "unauthenticated"
    assert r.headers["www-authenticate"] == "Bearer"
    r = httpx.get(f"{metered.server.url}/metrics", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401


def test_metrics_port_serves_only_metrics(metered: MeteredServer) -> None:
    base = metered.metrics_url.removesuffix("/metrics")
    assert httpx.get(f"{base}/metrics?x=1").status_code == 200
    for path in ("/", "/healthz", "/api/v1/namespaces", "/metrics/x", "/metricsx"):
        assert httpx.get(f"{base}{path}").status_code == 404, path
    r = httpx.post(f"{base}/metrics", content=b"x")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, HEAD"
    assert httpx.head(f"{base}/metrics").status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "METRICS_PORT"], b"REGISTRY_METRICS__PORT must differ from the API port"),
        # Several workers: the parent binds the metrics port before any worker starts.
        (["--workers", "2", "BUSY"], b"cannot listen on 127.0.0.1:"),
    ],
)
def test_serve_refuses_a_metrics_port_it_cannot_serve(
    tmp_path: Path, args: list[str], message: bytes
) -> None:
    import socket
    import subprocess
    import sys

    from tests.fixtures.server import server_env

    env = server_env("sqlite:///" + str(tmp_path / "r.db"), tmp_path / "a")
    port = str(free_port())
    env["REGISTRY_METRICS__PORT"] = port
    env["COLUMNS"] = "200"  # the usage error on one line
    with socket.socket() as taken:
        if "BUSY" in args:
            taken.bind(("127.0.0.1", int(port)))
            taken.listen()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "registry",
                "serve",
                "--port",
                str(free_port()),
                *(port if a == "METRICS_PORT" else a for a in args if a != "BUSY"),
            ],
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr


# --- the collectors on their own, against real parts ---------------------------------------


def test_pool_metrics_follow_checkouts(database_url: str) -> None:
    engine = make_engine(DatabaseSettings(url=database_url, pool_size=3))
    metrics = Metrics()
    metrics.watch_pool(engine.pool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            during = families(metrics.render().decode())
        after = families(metrics.render().decode())
    finally:
        engine.dispose()
    # PostgreSQL takes REGISTRY_DATABASE__POOL_SIZE; SQLite keeps SQLAlchemy's default pool.
    size = 3 if database_url.startswith("postgresql") else engine.pool.size()  # type: ignore[attr-defined]
    assert during["registry_db_pool_size"][0].value == size
    assert during["registry_db_pool_checked_out"][0].value == 1
    assert after["registry_db_pool_checked_out"][0].value == 0
    assert after["registry_db_pool_checked_in"][0].value == 1


def test_s3_calls_are_counted_by_operation_and_outcome(moto_s3_server: S3Server) -> None:
    metrics = Metrics()
    client = client_for(moto_s3_server)
    ours = boto3.session.Session().client(
        "s3",
        endpoint_url=client.meta.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=moto_s3_server.access_key_id,
        aws_secret_access_key=moto_s3_server.secret_access_key,
        config=Config(s3={"addressing_style": "path"}),
    )
    metrics.watch_s3(ours)
    bucket = f"metrics-{uuid.uuid4().hex[:12]}"
    ours.create_bucket(Bucket=bucket)
    try:
        ours.put_object(Bucket=bucket, Key="k", Body=b"x")
        with pytest.raises(ClientError):
            ours.head_object(Bucket=bucket, Key="missing")
        with pytest.raises(ClientError, match="BucketNotEmpty"):
            ours.delete_bucket(Bucket=bucket)  # 409
    finally:
        ours.delete_object(Bucket=bucket, Key="k")
        ours.delete_bucket(Bucket=bucket)
    # A store nobody listens on: connection refused, no answer at all.
    down = boto3.session.Session().client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=1),
    )
    metrics.watch_s3(down)
    with pytest.raises(EndpointConnectionError):
        down.head_bucket(Bucket="b")
    text_ = metrics.render().decode()
    calls = "registry_s3_calls_total"
    assert _value(text_, calls, operation="PutObject", outcome="ok") == 1
    assert _value(text_, calls, operation="HeadObject", outcome="not_found") == 1
    assert _value(text_, calls, operation="DeleteBucket", outcome="client_error") == 1
    assert _value(text_, calls, operation="DeleteBucket", outcome="ok") == 1
    assert _value(text_, calls, operation="HeadBucket", outcome="unreachable") == 1
    duration = "registry_s3_call_duration_seconds_count"
    assert _value(text_, duration, operation="PutObject") == 1
    assert _value(text_, duration, operation="HeadBucket") == 1


def test_bucket_bounds_are_inclusive_and_counts_add_up() -> None:
    metrics = Metrics()
    for seconds in (0.0005, 0.0006, 31.0):
        metrics.http.observe("/r", "GET", 200, seconds)
    metrics.http.observe("/r", "GET", 999, 0.1)  # no status class: "other"
    text_ = metrics.render().decode()
    bucket = "registry_http_request_duration_seconds_bucket"
    labels = {"route": "/r", "method": "GET", "status": "2xx"}
    assert _value(text_, bucket, le="0.0005", **labels) == 1  # le: at most the bound
    assert _value(text_, bucket, le="0.001", **labels) == 2
    assert _value(text_, bucket, le="30.0", **labels) == 2
    assert _value(text_, bucket, le="+Inf", **labels) == 3
    assert _value(text_, "registry_http_request_duration_seconds_count", **labels) == 3
    assert _value(text_, "registry_http_requests_total", **labels) == 3
    total = _value(text_, "registry_http_request_duration_seconds_sum", **labels)
    assert total == pytest.approx(31.0011)
    assert _value(text_, "registry_http_requests_total", status="other") == 1


def test_an_exception_through_the_middleware_counts_as_a_5xx() -> None:
    """The app below raises where no registry route can be made to: a fault injected on
    purpose (the real app turns every exception into a response before this layer)."""
    import asyncio

    from registry.api.http_metrics import HttpMetricsMiddleware

    async def broken(scope: object, receive: object, send: object) -> None:
        raise RuntimeError("boom")

    metrics = Metrics()
    middleware = HttpMetricsMiddleware(broken, metrics=metrics)
    scope = {"type": "http", "method": "GET", "path": "/x", "app": None}

    async def call() -> None:
        await middleware(scope, None, None)  # type: ignore[arg-type]

    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(call())
    assert sum(metrics.http.series[(UNMATCHED, "GET", "5xx")][:-1]) == 1
