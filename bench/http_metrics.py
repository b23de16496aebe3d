"""What the HTTP metrics cost the serving hot path: resolve in-process, with and without
``registry.api.http_metrics.HttpMetricsMiddleware``, in one run.

A real registry (SQLite) set up as ``bench.resolve`` does (through the HTTP API of a real
server: two versions, a deployment, a canary at 5 %), then the same database served by two apps
built in this process by ``create_app``: one as shipped, one with the metrics middleware
removed. Each answers ``GET /api/v1/deployments/{d}/resolve?key=tenant-N`` (bearer token)
driven directly through ASGI (no socket, no uvicorn: the difference is the middleware alone,
not the network's noise). Reported per variant: Python function calls per resolve (cProfile,
machine-independent) and the best of several rounds of µs per resolve (interleaved).

    python -m bench.http_metrics [--quick]
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import (
    migrate_and_bootstrap,
    parse_args,
    print_table,
    running,
    scratch_database,
    start_registry,
    write_json,
)
from bench._resolve_setup import DEPLOYMENT, setup_ours

NAME = "http_metrics"


def _app(url: str, artifacts: Path, with_metrics: bool) -> Any:
    from registry.api.http_metrics import HttpMetricsMiddleware
    from registry.app import create_app
    from registry.settings import Settings

    settings = Settings.model_validate(
        {
            "database": {"url": url},
            "storage": {"backend": "local", "root": str(artifacts)},
            "audit": {"signing_key_path": str(artifacts.parent / "audit-signing.key")},
            "controller": {"enabled": False},
            "jobs": {"enabled": False},
            "webhooks": {"enabled": False},
        }
    )
    app = create_app(settings)
    if not with_metrics:
        app.user_middleware = [
            m for m in app.user_middleware if getattr(m, "cls", None) is not HttpMetricsMiddleware
        ]
    return app


def _scope(token: str, key: int) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": f"/api/v1/deployments/{DEPLOYMENT}/resolve",
        "raw_path": f"/api/v1/deployments/{DEPLOYMENT}/resolve".encode(),
        "root_path": "",
        "query_string": f"key=tenant-{key}".encode(),
        "headers": [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }


async def _resolve(app: Any, scope: dict[str, Any]) -> int:
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(dict(scope), receive, send)
    return status


async def _loop(app: Any, scopes: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    for scope in scopes:
        if await _resolve(app, scope) != 200:
            raise RuntimeError("resolve did not answer 200")
    return time.perf_counter() - started


async def _measure(apps: dict[str, Any], token: str, n: int, rounds: int) -> dict[str, Any]:
    scopes = [_scope(token, i % 1000) for i in range(n)]
    for app in apps.values():
        await _loop(app, scopes[:500])  # warm: routing cache, token cache, children
    calls: dict[str, float] = {}
    for name, app in apps.items():
        profile = cProfile.Profile()
        profile.enable()
        await _loop(app, scopes[:2000])
        profile.disable()
        calls[name] = pstats.Stats(profile).total_calls / 2000  # type: ignore[attr-defined]
    times: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(rounds):
        for name, app in apps.items():
            times[name].append(await _loop(app, scopes) / n * 1e6)
    return {
        name: {
            "python_calls_per_resolve": round(calls[name], 1),
            "us_per_resolve_best": round(min(times[name]), 2),
            "us_per_resolve_median": round(statistics.median(times[name]), 2),
        }
        for name in apps
    }


async def _run_apps(url: str, artifacts: Path, token: str, n: int, rounds: int) -> dict[str, Any]:
    apps = {
        "without metrics middleware": _app(url, artifacts, with_metrics=False),
        "with metrics middleware": _app(url, artifacts, with_metrics=True),
    }
    contexts = [app.router.lifespan_context(app) for app in apps.values()]
    for context in contexts:
        await context.__aenter__()
    try:
        return await _measure(apps, token, n, rounds)
    finally:
        for context in reversed(contexts):
            await context.__aexit__(None, None, None)


def main() -> None:
    args = parse_args(__doc__ or NAME)
    n, rounds = (2000, 3) if args.quick else (20000, 7)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with scratch_database("sqlite", tmp, "metrics") as url:
            token = migrate_and_bootstrap(url)
            with running(start_registry(url, tmp, "setup")) as server:
                state = setup_ours(server, token)
            if not state.resolve_ok:
                raise SystemExit(f"set-up failed: {state.notes}")
            results = asyncio.run(_run_apps(url, tmp / "setup-artifacts", token, n, rounds))
    base = results["without metrics middleware"]
    rows = []
    for name, r in results.items():
        rows.append(
            [
                name,
                r["python_calls_per_resolve"],
                r["us_per_resolve_best"],
                r["us_per_resolve_median"],
                f"{r['us_per_resolve_best'] - base['us_per_resolve_best']:+.2f}",
            ]
        )
    print_table(
        f"resolve in-process (ASGI, SQLite, {n} resolves x {rounds} rounds)",
        ["variant", "Python calls / resolve", "µs best", "µs median", "Δ µs best"],
        rows,
    )
    write_json(NAME, {"n": n, "rounds": rounds, "results": results})


if __name__ == "__main__":
    main()
