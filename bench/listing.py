"""List/search latency at 1,000 and 100,000 versions of ONE adapter, ours vs MLflow.

Ours: one version is pushed through the real API (so every row it references exists), then its
``adapter_versions`` row is copied with SQLAlchemy Core bulk inserts (with ``version_files`` and
``version_tags`` rows) up to N versions; ``adapters.latest_version`` is set, ``ANALYZE`` run and
the server restarted. Then ``GET /api/v1/adapters/bench/big/versions`` is timed sequentially on
one keep-alive connection: first page (limit 50), a deep page (page token of version N/2), and
filtered by ``peft_type``, ``rank``, ``tag``, ``state``.

Row mix: every 10th version is IA3 (no rank), the others LORA with r cycling 4/8/16/32;
every 20th is archived; every 100th is tagged ``prod`` and every 10th ``nightly``.

MLflow: one registered model, one version created through the API, then the same bulk copy into
its ``model_versions`` table, ``ANALYZE``, server restart, and
``MlflowClient().search_model_versions("name='big'", max_results=50)`` timed the same way.

    python -m bench.listing [--quick] [--dialects sqlite,postgresql]
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine, Table, create_engine, func, select, update

from bench._common import (
    analyze,
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
from bench.registration import AdapterFiles, register, stage_upload

NAME = "listing"
TARGET_P95_MS = 20.0
ADAPTER = "big"
BATCH = 5_000
WARMUP = 20
MLFLOW_BUDGET_S = 30.0  # per size: MLflow's search gets slow at 100k (sorts every row)


@dataclass
class Query:
    label: str
    params: dict[str, Any]


def queries_for(n_versions: int) -> list[Query]:
    from registry.api.pagination import encode_token

    return [
        Query("first page (limit 50)", {"limit": 50}),
        Query(
            f"deep page (token v{n_versions // 2})",
            {"limit": 50, "page_token": encode_token([n_versions // 2])},
        ),
        Query("peft_type=IA3 (10 %)", {"limit": 50, "peft_type": "IA3"}),
        Query("rank=16 (~22 %)", {"limit": 50, "rank": 16}),
        Query("tag=prod (1 %)", {"limit": 50, "tag": "prod"}),
        Query("state=archived (5 %)", {"limit": 50, "state": "archived"}),
    ]


def measure(
    n_requests: int, call: Callable[[], int], budget_s: float = float("inf")
) -> tuple[list[float], int]:
    """Time ``call`` up to ``n_requests`` times (and at most ``budget_s`` seconds, but at least
    30 requests) after a warm-up; returns (latencies, items returned by the last call)."""
    items = 0
    for _ in range(WARMUP):
        items = call()
    lat: list[float] = []
    deadline = time.perf_counter() + budget_s
    for _ in range(n_requests):
        t0 = time.perf_counter()
        items = call()
        lat.append(time.perf_counter() - t0)
        if len(lat) >= 30 and t0 > deadline:
            break
    return lat, items


# --------------------------------------------------------------------------- ours: bulk load


def _row_variant(v: int) -> dict[str, Any]:
    ia3 = v % 10 == 0
    return {
        "peft_type": "IA3" if ia3 else "LORA",
        "r": None if ia3 else (4, 8, 16, 32)[v % 4],
        "state": "archived" if v % 20 == 0 else "registered",
    }


def load_ours(engine: Engine, start: int, stop: int) -> None:
    """Copy the template version (v1) into versions ``start..stop-1``."""
    from registry.catalog.models import Adapter, AdapterVersion, VersionFile, VersionTag

    av, vf, vt = (cast(Table, m.__table__) for m in (AdapterVersion, VersionFile, VersionTag))
    with engine.begin() as conn:
        adapter_id = conn.execute(select(Adapter.id).where(Adapter.name == ADAPTER)).scalar_one()
        template = dict(
            conn.execute(select(av).where(av.c.adapter_id == adapter_id, av.c.version == 1))
            .mappings()
            .one()
        )
        files = [
            dict(r)
            for r in conn.execute(
                select(vf).where(vf.c.adapter_version_id == template["id"])
            ).mappings()
        ]
        t0 = template["created_at"]
        for lo in range(start, stop, BATCH):
            versions, file_rows, tag_rows = [], [], []
            for v in range(lo, min(lo + BATCH, stop)):
                vid = uuid.uuid4()
                row = dict(template)
                row.update(_row_variant(v))
                row.update(
                    id=vid,
                    version=v,
                    digest="sha256:" + hashlib.sha256(f"bench-{v}".encode()).hexdigest(),
                    created_at=t0 + timedelta(seconds=v),
                    archived_at=(t0 + timedelta(seconds=v)) if v % 20 == 0 else None,
                )
                versions.append(row)
                for f in files:
                    file_rows.append({**f, "id": uuid.uuid4(), "adapter_version_id": vid})
                tags = (["prod"] if v % 100 == 0 else []) + (["nightly"] if v % 10 == 0 else [])
                for tag in tags:
                    tag_rows.append(
                        {
                            "id": uuid.uuid4(),
                            "adapter_version_id": vid,
                            "adapter_id": adapter_id,
                            "version": v,
                            "tag": tag,
                            "created_at": datetime.now(UTC),
                        }
                    )
            conn.execute(av.insert(), versions)
            if file_rows:
                conn.execute(vf.insert(), file_rows)
            if tag_rows:
                conn.execute(vt.insert(), tag_rows)
        conn.execute(
            update(Adapter).where(Adapter.id == adapter_id).values(latest_version=stop - 1)
        )
        count = conn.execute(
            select(func.count()).select_from(av).where(av.c.adapter_id == adapter_id)
        ).scalar_one()
    if count != stop - 1:
        raise RuntimeError(f"expected {stop - 1} versions, found {count}")


def bench_ours(
    dialect: str, url: str, tmp: Path, sizes: Sequence[int], n_requests: int
) -> list[dict[str, Any]]:
    token = migrate_and_bootstrap(url)
    with (
        running(start_registry(url, tmp, f"list-{dialect}-setup")) as server,
        api_client(server, token) as client,
    ):
        base = setup_catalog(client)
        files = AdapterFiles()
        register(client, ADAPTER, base, stage_upload(client, files, "template"))
    engine = create_engine(url)
    out: list[dict[str, Any]] = []
    loaded = 1
    try:
        for n in sizes:
            t0 = time.perf_counter()
            load_ours(engine, loaded + 1, n + 1)
            load_s = time.perf_counter() - t0
            loaded = n
            analyze(url)
            print(f"  ours   {dialect:10} loaded {n:,} versions ({load_s:.1f} s)", flush=True)
            with (
                running(start_registry(url, tmp, f"list-{dialect}-{n}")) as server,
                api_client(server, token) as client,
            ):
                for q in queries_for(n):

                    def call(q: Query = q) -> int:
                        r = client.get(
                            f"/api/v1/adapters/bench/{ADAPTER}/versions", params=q.params
                        )
                        if r.status_code != 200:
                            raise RuntimeError(f"{q.label}: {r.status_code} {r.text[:300]}")
                        return len(r.json()["items"])

                    lat, items = measure(n_requests, call)
                    out.append(
                        {
                            "system": "ours",
                            "dialect": dialect,
                            "versions": n,
                            "query": q.label,
                            "items": items,
                            "load_s": round(load_s, 1),
                            **latency_summary_ms(lat),
                        }
                    )
                    _progress(out[-1])
    finally:
        engine.dispose()
    return out


# --------------------------------------------------------------------------- MLflow


def load_mlflow(engine: Engine, model: str, start: int, stop: int) -> None:
    from sqlalchemy import MetaData, Table

    mv = Table("model_versions", MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        template = dict(
            conn.execute(select(mv).where(mv.c.name == model, mv.c.version == 1)).mappings().one()
        )
        t0 = int(template["creation_time"])
        for lo in range(start, stop, BATCH):
            rows = []
            for v in range(lo, min(lo + BATCH, stop)):
                row = dict(template)
                row.update(
                    version=v,
                    creation_time=t0 + v,
                    last_updated_time=t0 + v,
                    source=f"s3://bench/{model}/{v}/model",
                )
                if "storage_location" in row:
                    row["storage_location"] = row["source"]
                rows.append(row)
            conn.execute(mv.insert(), rows)
        count = conn.execute(
            select(func.count()).select_from(mv).where(mv.c.name == model)
        ).scalar_one()
    if count != stop - 1:
        raise RuntimeError(f"expected {stop - 1} MLflow versions, found {count}")


def bench_mlflow(
    dialect: str, url: str, tmp: Path, sizes: Sequence[int], n_requests: int
) -> list[dict[str, Any]]:
    from mlflow import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    with running(start_mlflow(url, tmp, f"mlist-{dialect}-setup")) as server:
        client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
        client.create_registered_model(ADAPTER)
        client.create_model_version(ADAPTER, f"s3://bench/{ADAPTER}/1/model", await_creation_for=0)
    engine = create_engine(url)
    out: list[dict[str, Any]] = []
    loaded = 1
    try:
        for n in sizes:
            t0 = time.perf_counter()
            load_mlflow(engine, ADAPTER, loaded + 1, n + 1)
            load_s = time.perf_counter() - t0
            loaded = n
            analyze(url)
            print(f"  mlflow {dialect:10} loaded {n:,} versions ({load_s:.1f} s)", flush=True)
            with running(start_mlflow(url, tmp, f"mlist-{dialect}-{n}")) as server:
                client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)

                def call(client: MlflowClient = client) -> int:
                    return len(client.search_model_versions(f"name='{ADAPTER}'", max_results=50))

                lat, items = measure(n_requests, call, MLFLOW_BUDGET_S)
                out.append(
                    {
                        "system": "mlflow",
                        "dialect": dialect,
                        "versions": n,
                        "query": "search_model_versions name=, max_results=50",
                        "items": items,
                        "load_s": round(load_s, 1),
                        **latency_summary_ms(lat),
                    }
                )
                _progress(out[-1])
    finally:
        engine.dispose()
    return out


def _progress(r: dict[str, Any]) -> None:
    print(
        f"  {r['system']:6} {r['dialect']:10} {r['versions']:>7,} {r['query']:42} "
        f"p50 {r['p50_ms']:7.2f}  p95 {r['p95_ms']:7.2f}  p99 {r['p99_ms']:7.2f} ms "
        f"({r['items']} items)",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(__doc__ or NAME, argv)
    wait_for_quiet()
    sizes = (1_000, 10_000) if args.quick else (1_000, 10_000, 100_000)
    n_requests = 100 if args.quick else 300
    n_requests_mlflow = 100 if args.quick else 200
    results: list[dict[str, Any]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-list-") as tmp_s:
        tmp = Path(tmp_s)
        for dialect in dialects_of(args):
            with scratch_database(dialect, tmp, f"list_{dialect}") as url:
                results += bench_ours(dialect, url, tmp, sizes, n_requests)
            if mlflow_available():
                with scratch_database(dialect, tmp, f"mlist_{dialect}") as url:
                    results += bench_mlflow(dialect, url, tmp, sizes, n_requests_mlflow)
            else:
                notes.append("mlflow is not installed in this venv: MLflow side skipped")
    big = max(sizes)
    checks = []
    rows = []
    for r in results:
        at_target = r["system"] == "ours" and r["versions"] == big
        ok = r["p95_ms"] < TARGET_P95_MS
        rows.append(
            [
                r["system"],
                r["dialect"],
                r["versions"],
                r["query"],
                r["items"],
                r["p50_ms"],
                r["p95_ms"],
                r["p99_ms"],
                mark(ok) if at_target else "",
            ]
        )
        if at_target:
            checks.append(
                {
                    "name": f"list p95 at {big:,}, {r['dialect']}, {r['query']}",
                    "value": r["p95_ms"],
                    "target": f"< {TARGET_P95_MS} ms",
                    "ok": ok,
                }
            )
    print_table(
        f"List/search latency, ms ({n_requests} requests per query for ours, "
        f"{n_requests_mlflow} for MLflow, after {WARMUP} warm-up; one client, keep-alive)",
        [
            "system",
            "db",
            "versions",
            "query",
            "items",
            "p50",
            "p95",
            "p99",
            f"p95 < {TARGET_P95_MS:g} ms",
        ],
        rows,
    )
    for note in notes:
        print(f"note: {note}")
    write_json(
        NAME,
        {
            "sizes": list(sizes),
            "requests": n_requests,
            "requests_mlflow": n_requests_mlflow,
            "results": results,
            "checks": checks,
            "notes": notes,
        },
    )
    return {"name": NAME, "checks": checks}


if __name__ == "__main__":
    main()
