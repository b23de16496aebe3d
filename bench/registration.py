"""Registration rate on the metadata path, ours vs MLflow ``create_model_version``.

Each side at its default worker count, up side by side on databases of their own, the sides
alternating per client count. Ours, through the real HTTP API of ``adapter-registry serve``
(one uvicorn worker per core):

* **full push**: ``POST /uploads`` + 3 ``PUT`` (config, weights, a README that differs per
  version so every version has its own digest) + ``POST .../versions``;
* **register only**: the upload sessions are staged before the clock starts, only the
  ``POST .../versions`` (validation of the staged files + the version row) is timed.

MLflow: ``MlflowClient().create_model_version(name, source="s3://...", await_creation_for=0)``
(one REST call per version, no artifact upload) against ``mlflow server`` (its default 4
workers, ``--no-serve-artifacts``) on the same database engine. 1 and 4 clients, each a forked
process with its own HTTP client (threads would queue on the benchmark's GIL; MLflow's Python client
alone costs ~2 ms of CPU per call); every client registers versions of the same adapter /
registered model.

    python -m bench.registration [--quick] [--dialects sqlite,postgresql]
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench._common import (
    ADAPTER_DIR,
    Server,
    api_client,
    dialects_of,
    latency_summary_ms,
    mark,
    migrate_and_bootstrap,
    mlflow_available,
    parse_args,
    print_table,
    running,
    scratch_database,
    setup_catalog,
    start_mlflow,
    start_registry,
    wait_for_quiet,
    write_json,
)
from bench._oploop import run_processes

NAME = "registration"
TARGET_RATIO = 5.0
CLIENTS = (1, 4)
WARMUP_OPS = 10


@dataclass
class RateResult:
    system: str
    dialect: str
    mode: str
    clients: int
    ops: int
    seconds: float
    latencies_s: list[float]

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "dialect": self.dialect,
            "mode": self.mode,
            "clients": self.clients,
            "ops": self.ops,
            "seconds": round(self.seconds, 3),
            "ops_per_s": round(self.ops_per_s, 1),
            "latency": latency_summary_ms(self.latencies_s),
        }


# --------------------------------------------------------------------------- ours


class AdapterFiles:
    """The fixture adapter's files; the README gets a per-version suffix (distinct digests)."""

    def __init__(self, directory: Path = ADAPTER_DIR) -> None:
        self.config = (directory / "adapter_config.json").read_bytes()
        self.weights = (directory / "adapter_model.safetensors").read_bytes()
        self.readme = (directory / "README.md").read_bytes()
        self.config_digest = _digest(self.config)
        self.weights_digest = _digest(self.weights)

    def readme_for(self, tag: str) -> bytes:
        return self.readme + f"\n\n<!-- bench version {tag} -->\n".encode()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _check(r: httpx.Response, expected: int) -> httpx.Response:
    if r.status_code != expected:
        raise RuntimeError(f"{r.request.method} {r.request.url}: {r.status_code} {r.text[:500]}")
    return r


def stage_upload(client: httpx.Client, files: AdapterFiles, tag: str) -> str:
    upload_id = str(
        _check(client.post("/api/v1/uploads", json={"purpose": "adapter"}), 201).json()["id"]
    )
    readme = files.readme_for(tag)
    for name, data, digest in (
        ("adapter_config.json", files.config, files.config_digest),
        ("adapter_model.safetensors", files.weights, files.weights_digest),
        ("README.md", readme, _digest(readme)),
    ):
        _check(
            client.put(
                f"/api/v1/uploads/{upload_id}/files/{name}",
                content=data,
                headers={"X-Content-Digest": digest},
            ),
            201,
        )
    return upload_id


def register(client: httpx.Client, adapter: str, base: str, upload_id: str) -> None:
    _check(
        client.post(
            f"/api/v1/adapters/bench/{adapter}/versions",
            json={"base": base, "upload_id": upload_id},
        ),
        201,
    )


def bench_ours(
    server: Server, token: str, base: str, dialect: str, clients: int, n_ops: int
) -> list[RateResult]:
    """Full push, then register only, at ``clients`` clients."""
    files = AdapterFiles()
    results: list[RateResult] = []
    # full push: upload session + 3 PUTs + register
    adapter = f"push-t{clients}"
    with api_client(server, token) as client:
        for w in range(WARMUP_OPS):
            register(client, adapter, base, stage_upload(client, files, f"{adapter}-w{w}"))

    def push_worker(adapter: str = adapter) -> tuple[Callable[[int], None], Callable[[], None]]:
        client = api_client(server, token)

        def op(i: int) -> None:
            register(client, adapter, base, stage_upload(client, files, f"{adapter}-{i}"))

        return op, client.close

    wall, lat = run_processes(n_ops, clients, push_worker)
    results.append(RateResult("ours", dialect, "full push", clients, n_ops, wall, lat))
    _progress(results[-1])

    # register only: uploads staged before the clock starts
    adapter = f"reg-t{clients}"
    with api_client(server, token) as client:
        for w in range(WARMUP_OPS):
            register(client, adapter, base, stage_upload(client, files, f"{adapter}-w{w}"))
        staged = [stage_upload(client, files, f"{adapter}-{k}") for k in range(n_ops)]

    def register_worker(
        adapter: str = adapter, staged: list[str] = staged
    ) -> tuple[Callable[[int], None], Callable[[], None]]:
        client = api_client(server, token)

        def op(i: int) -> None:
            register(client, adapter, base, staged[i])

        return op, client.close

    wall, lat = run_processes(n_ops, clients, register_worker)
    results.append(RateResult("ours", dialect, "register POST", clients, n_ops, wall, lat))
    _progress(results[-1])
    return results


# --------------------------------------------------------------------------- MLflow


def bench_mlflow(server: Server, dialect: str, clients: int, n_ops: int) -> list[RateResult]:
    from mlflow import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    model = f"bench-t{clients}"
    setup = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
    setup.create_registered_model(model)
    for w in range(WARMUP_OPS):
        setup.create_model_version(model, f"s3://bench/{model}/w{w}", await_creation_for=0)

    def worker(model: str = model) -> tuple[Callable[[int], None], Callable[[], None]]:
        client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)

        def op(i: int) -> None:
            client.create_model_version(
                model, f"s3://bench/{model}/{i}/model", await_creation_for=0
            )

        return op, lambda: None

    wall, lat = run_processes(n_ops, clients, worker)
    result = RateResult("mlflow", dialect, "create_model_version", clients, n_ops, wall, lat)
    _progress(result)
    return [result]


def bench_dialect(dialect: str, tmp: Path, n_ops: int, with_mlflow: bool) -> list[RateResult]:
    """Both servers up side by side (each on a database of its own, at its default worker
    count: ours one per core, MLflow's 4); the sides alternate per client count."""
    results: list[RateResult] = []
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(scratch_database(dialect, tmp, f"reg_{dialect}"))
        token = migrate_and_bootstrap(url)
        ours = stack.enter_context(
            running(start_registry(url, tmp, f"reg-{dialect}", workers=None))
        )
        with api_client(ours, token) as client:
            base = setup_catalog(client)
        mlflow = None
        if with_mlflow:
            ml_url = stack.enter_context(scratch_database(dialect, tmp, f"mlreg_{dialect}"))
            mlflow = stack.enter_context(
                running(start_mlflow(ml_url, tmp, f"mlflow-{dialect}", workers=None))
            )
        for clients in CLIENTS:
            results += bench_ours(ours, token, base, dialect, clients, n_ops)
            if mlflow is not None:
                results += bench_mlflow(mlflow, dialect, clients, n_ops)
    return results


def _progress(r: RateResult) -> None:
    print(
        f"  {r.system:6} {r.dialect:10} {r.mode:20} clients={r.clients}: "
        f"{r.ops_per_s:8.1f} ops/s ({r.ops} ops in {r.seconds:.2f} s)",
        flush=True,
    )


# --------------------------------------------------------------------------- report


def summarize(results: Sequence[RateResult]) -> tuple[list[list[Any]], list[dict[str, Any]]]:
    by_key = {(r.system, r.dialect, r.mode, r.clients): r for r in results}
    rows: list[list[Any]] = []
    checks: list[dict[str, Any]] = []
    for dialect in dict.fromkeys(r.dialect for r in results):
        for clients in CLIENTS:
            push = by_key.get(("ours", dialect, "full push", clients))
            reg = by_key.get(("ours", dialect, "register POST", clients))
            ml = by_key.get(("mlflow", dialect, "create_model_version", clients))
            ml_rate = ml.ops_per_s if ml else float("nan")
            reg_ratio = reg.ops_per_s / ml_rate if reg and ml else float("nan")
            push_ratio = push.ops_per_s / ml_rate if push and ml else float("nan")
            ok = bool(ml and reg and reg_ratio >= TARGET_RATIO)
            rows.append(
                [
                    dialect,
                    clients,
                    push.ops_per_s if push else None,
                    reg.ops_per_s if reg else None,
                    ml_rate,
                    push_ratio,
                    reg_ratio,
                    mark(ok) if ml else "n/a",
                ]
            )
            checks.append(
                {
                    "name": f"register rate vs MLflow, {dialect}, {clients} client(s)",
                    "value": round(reg_ratio, 2),
                    "target": f">= {TARGET_RATIO}x",
                    "ok": ok,
                }
            )
    return rows, checks


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(__doc__ or NAME, argv)
    wait_for_quiet()
    n_ops = 60 if args.quick else 200
    results: list[RateResult] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-reg-") as tmp_s:
        tmp = Path(tmp_s)
        if not mlflow_available():
            notes.append("mlflow is not installed in this venv: MLflow side skipped")
        for dialect in dialects_of(args):
            results += bench_dialect(dialect, tmp, n_ops, mlflow_available())
    rows, checks = summarize(results)
    print_table(
        f"Registration rate, ops/s ({n_ops} versions per case, after {WARMUP_OPS} warm-up)",
        [
            "db",
            "clients",
            "ours full push",
            "ours register",
            "MLflow create_mv",
            "push/MLflow",
            "register/MLflow",
            f"target >= {TARGET_RATIO:g}x",
        ],
        rows,
    )
    lat_rows = [
        [r.system, r.dialect, r.mode, r.clients, *latency_summary_ms(r.latencies_s).values()]
        for r in results
    ]
    print_table(
        "Per-operation latency (ms)",
        ["system", "db", "operation", "clients", "n", "p50", "p95", "p99", "max"],
        lat_rows,
    )
    for note in notes:
        print(f"note: {note}")
    payload = {
        "ops_per_case": n_ops,
        "warmup_ops": WARMUP_OPS,
        "adapter": ADAPTER_DIR.name,
        "results": [r.to_json() for r in results],
        "checks": checks,
        "notes": notes,
        "run_id": uuid.uuid4().hex,
    }
    write_json(NAME, payload)
    return {"name": NAME, "checks": checks}


if __name__ == "__main__":
    main()
