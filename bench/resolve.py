"""The serving hot path, side by side with MLflow, in one run.

* **ours**: ``GET /api/v1/deployments/{d}/resolve?key=K`` (bearer token) on the registry under
  uvicorn (one worker), SQLite and PostgreSQL. Set up through the API: two versions with
  evaluations, a deployment, v1 promoted and approved by a second principal (four eyes), v2
  promoted so a canary runs (or ``POST …/rollout`` to 5 %). Keys: random ``tenant-N``.
* **MLflow**: ``MlflowClient().get_model_version_by_alias(name, "champion")`` on ``mlflow
  server`` (one worker) with the same database engine, and the same REST call
  (``GET /api/2.0/mlflow/registered-models/alias``) with the same httpx loop as ours.
* **ceiling**: a bare FastAPI route returning a constant resolve-shaped JSON, same uvicorn
  settings (``bench._resolve_ceiling``); measured first and again (keep-alive) at the end.
* every system with 1 and 8 client processes (one ``httpx.Client`` each), keep-alive (one
  connection reused) and a new TCP connection per request (``Connection: close``); a fixed
  warm-up then a fixed window. Client processes share the 2 CPUs with the server: client and
  server CPU per request are reported next to the rates.
* **Router**: local resolves/s of ``registry.client.router.Router`` from a cached routing table:
  ``bench.router`` is run for it (its checked figure), or, without it, timed here.
* **served at T**: ``GET /api/v1/audit/served?deployment=D&at=T&key=K`` with 1,000,000
  deployment revisions (100 deployments x 10,000) loaded with COPY / executemany, ANALYZEd.

Every database is ANALYZEd after loading (autovacuum is off here), both systems alike, and each
server restarted before it is timed. Nothing aborts on a failed request: failures are counted.

    python -m bench.resolve [--quick] [--dialects sqlite,postgresql]
"""

from __future__ import annotations

import random
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import _resolve_setup as setup
from bench._common import (
    analyze,
    dialects_of,
    migrate_and_bootstrap,
    mlflow_available,
    parse_args,
    running,
    scratch_database,
    start_mlflow,
    start_registry,
    wait_for_quiet,
    write_json,
)
from bench._resolve_load import MakeOp, Op, httpx_op, process_tree, run_load, start_ceiling
from bench._resolve_report import (
    CEILING,
    CLIENTS,
    MLFLOW_CLIENT,
    MLFLOW_REST,
    OURS,
    Results,
    checks_of,
    print_report,
)
from bench._resolve_router import bench_router

NAME = "resolve"
N_PATHS = 10_000
MLFLOW_PATH = "/api/2.0/mlflow/registered-models/alias?" + urllib.parse.urlencode(
    {"name": setup.MLFLOW_MODEL, "alias": setup.MLFLOW_ALIAS}
)


class Run(Results):
    """Timing settings and everything measured so far."""

    def __init__(self, quick: bool) -> None:
        super().__init__(*((0.3, 1.0) if quick else (0.5, 3.0)))
        self.quick = quick
        self.served_shape = (100, 1_000) if quick else (100, 10_000)
        self.routing_table: dict[str, Any] | None = None
        rng = random.Random(1)
        self.keys = [f"tenant-{rng.randrange(1_000_000)}" for _ in range(N_PATHS)]

    def quiet(self) -> float:
        return wait_for_quiet(max_wait_s=60.0)

    def cases(
        self,
        system: str,
        dialect: str,
        make: Callable[[bool], MakeOp],
        pids: Sequence[int],
        keepalive_only: bool = False,
        prepare: Callable[[bool], None] = lambda keepalive: None,
    ) -> None:
        busy = self.quiet()
        for keepalive in (True,) if keepalive_only else (True, False):
            prepare(keepalive)
            for clients in CLIENTS:
                res = run_load(make(keepalive), clients, self.warmup_s, self.duration_s, pids)
                row = {
                    "system": system,
                    "dialect": dialect,
                    "clients": clients,
                    "connection": "keep-alive" if keepalive else "new per request",
                    "cpu_busy_before_pct": busy,
                    **res.to_json(),
                }
                self.rows.append(row)
                print(
                    f"  {system:33} {dialect:10} {clients} client(s) {row['connection']:15} "
                    f"{row['rps']:8.0f} req/s  p50 {row['p50_ms']:6.2f}  p99 "
                    f"{row['p99_ms']:6.2f} ms  failures {row['failures']}",
                    flush=True,
                )


# --------------------------------------------------------------------------- systems


def bench_ceiling(run: Run, tmp: Path, again: bool = False) -> None:
    paths = [f"?key={k}" for k in run.keys]
    with running(start_ceiling(tmp)) as server:
        pids = process_tree(server.pid)
        for route, name in (("/resolve", CEILING), ("/resolve-sync", "ceiling (def)")):
            if again and name != CEILING:
                continue  # the final run repeats only what the checks compare with
            full = [route + p for p in paths]
            system = f"{name}, again" if again else name

            def make(keepalive: bool, full: list[str] = full) -> MakeOp:
                return httpx_op(server.url, full, {"Authorization": "Bearer x"}, keepalive)

            run.cases(system, "-", make, pids, keepalive_only=again)


def bench_ours(run: Run, dialect: str, url: str, tmp: Path) -> str:
    """Set up, restart after ANALYZE, time resolve; returns the admin token."""
    token = migrate_and_bootstrap(url)
    with running(start_registry(url, tmp, f"resolve-{dialect}-setup")) as server:
        state = setup.setup_ours(server, token)
    run.notes += [f"{dialect}: {n}" for n in state.notes]
    analyze(url)
    with running(start_registry(url, tmp, f"resolve-{dialect}")) as server:
        auth = {"Authorization": f"Bearer {token}"}
        if run.routing_table is None:
            run.routing_table = _routing_table(server.url, auth)
        if not state.resolve_ok:
            return token
        base = f"/api/v1/deployments/{setup.DEPLOYMENT}/resolve?key="
        paths = [base + k for k in run.keys]
        run.notes.append(
            f"{dialect}: deployment revision {state.revision}, candidate share "
            f"{state.share_bp} bp ({'canary running' if state.canary else 'stable only'}); "
            f"observed candidate share {_observed_share(server.url, paths[:1000], auth)}"
        )

        def make(keepalive: bool) -> MakeOp:
            return httpx_op(server.url, paths, auth, keepalive)

        run.cases(OURS, dialect, make, process_tree(server.pid))
    return token


def _routing_table(base_url: str, auth: dict[str, str]) -> dict[str, Any] | None:
    r = httpx.get(f"{base_url}/api/v1/deployments/{setup.DEPLOYMENT}/routing-table", headers=auth)
    return r.json() if r.status_code == 200 else None


def _observed_share(base_url: str, paths: Sequence[str], auth: dict[str, str]) -> str:
    arms: dict[str, int] = {}
    with httpx.Client(base_url=base_url, headers=auth) as client:
        for path in paths:
            r = client.get(path)
            arm = str(r.json().get("arm")) if r.status_code == 200 else f"HTTP {r.status_code}"
            arms[arm] = arms.get(arm, 0) + 1
    return f"{100 * arms.get('candidate', 0) / len(paths):.1f} % of {len(paths)} keys ({arms})"


def bench_mlflow(run: Run, dialect: str, url: str, tmp: Path) -> None:
    from mlflow import MlflowClient

    with running(start_mlflow(url, tmp, f"mlresolve-{dialect}-setup")) as server:
        setup.setup_mlflow(server)
    analyze(url)
    with running(start_mlflow(url, tmp, f"mlresolve-{dialect}")) as server:
        pids = process_tree(server.pid)

        def client_op(keepalive: bool) -> MakeOp:
            def make() -> tuple[Op, Callable[[], None]]:
                client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)

                def op(i: int) -> bool:
                    mv = client.get_model_version_by_alias(setup.MLFLOW_MODEL, setup.MLFLOW_ALIAS)
                    return str(mv.version) == "1"

                return op, lambda: None

            return make

        try:
            run.cases(
                MLFLOW_CLIENT,
                dialect,
                client_op,
                pids,
                prepare=lambda keepalive: setup.mlflow_connection_close(not keepalive),
            )
        finally:
            setup.mlflow_connection_close(False)
        run.cases(
            MLFLOW_REST,
            dialect,
            lambda keepalive: httpx_op(server.url, [MLFLOW_PATH], {}, keepalive),
            pids,
        )


def bench_served(run: Run, dialect: str, url: str, tmp: Path, token: str) -> None:
    """Load the revisions into our database, ANALYZE, restart, time served-at-T queries at
    random deployments and random times within the loaded history (1 client, keep-alive)."""
    n_dep, per_dep = run.served_shape
    t0 = time.perf_counter()
    load = setup.load_revisions(url, n_dep, per_dep)
    load.load_s = time.perf_counter() - t0
    analyze(url)
    print(f"  served-at-T {dialect}: loaded {load.revisions:,} revisions in {load.load_s:.1f} s")
    rng = random.Random(2)
    span = (load.last - load.first).total_seconds()
    paths = []
    for key in run.keys[:2000]:
        at = load.first + timedelta(seconds=rng.uniform(0, span))
        query = {"deployment": rng.choice(load.deployments), "at": at.isoformat(), "key": key}
        paths.append("/api/v1/audit/served?" + urllib.parse.urlencode(query))
    auth = {"Authorization": f"Bearer {token}"}
    with running(start_registry(url, tmp, f"served-{dialect}")) as server:
        probe = httpx.get(server.url + paths[0], headers=auth)
        row: dict[str, Any] = {
            "dialect": dialect,
            "revisions": load.revisions,
            "deployments": n_dep,
            "load_s": round(load.load_s, 1),
            "probe_status": probe.status_code,
        }
        if probe.status_code == 200:
            row["cpu_busy_before_pct"] = run.quiet()
            res = run_load(
                httpx_op(server.url, paths, auth, True),
                1,
                run.warmup_s,
                run.duration_s,
                process_tree(server.pid),
            )
            row.update(res.to_json())
        else:
            run.notes.append(
                f"{dialect}: GET /api/v1/audit/served answered {probe.status_code} "
                f"({probe.text[:160]}): served-at-T not measured (loader ran)"
            )
        run.served.append(row)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(__doc__ or NAME, argv)
    run = Run(args.quick)
    dialects = dialects_of(args)
    with tempfile.TemporaryDirectory(prefix="bench-resolve-") as tmp_s:
        tmp = Path(tmp_s)
        bench_ceiling(run, tmp)
        for dialect in dialects:
            with scratch_database(dialect, tmp, f"resolve_{dialect}") as url:
                token = bench_ours(run, dialect, url, tmp)
                if mlflow_available():
                    with scratch_database(dialect, tmp, f"mlresolve_{dialect}") as ml_url:
                        bench_mlflow(run, dialect, ml_url, tmp)
                else:
                    run.notes.append("mlflow is not installed in this venv: MLflow side skipped")
                bench_served(run, dialect, url, tmp, token)
        bench_ceiling(run, tmp, again=True)
    router = bench_router(run.routing_table, run.quick, run.notes)
    checks = checks_of(run, dialects, router)
    print_report(run, checks, router)
    write_json(
        NAME,
        {
            "warmup_s": run.warmup_s,
            "duration_s": run.duration_s,
            "clients": list(CLIENTS),
            "results": run.rows,
            "router": router,
            "served": run.served,
            "checks": checks,
            "notes": run.notes,
        },
    )
    return {"name": NAME, "checks": checks}


if __name__ == "__main__":
    main()
