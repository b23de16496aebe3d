"""Audit log append rate: one event per transaction, 1 and 8 concurrent writer threads.

Each append is ``registry.audit.service.append`` in its own ``unit_of_work(Sessions.write)``
(lock the head row, insert the event, move the head, commit), on a fresh database migrated to
head and ANALYZEd before the clock starts. Concurrent writers serialise on the head row (on
SQLite on the database write lock), so the 8-thread figure shows the cost of that queue, not a
speed-up. After the appends, the whole chain is verified once (events/s of ``verify``).

    python -m bench.audit_append [--quick] [--dialects sqlite,postgresql]
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._common import (
    analyze,
    dialects_of,
    latency_summary_ms,
    mark,
    parse_args,
    print_table,
    scratch_database,
    wait_for_quiet,
    write_json,
)
from bench._oploop import run_threads

NAME = "audit_append"
THREADS = (1, 8)
WARMUP_OPS = 20


@dataclass
class AppendResult:
    dialect: str
    threads: int
    ops: int
    seconds: float
    latencies_s: list[float]

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "dialect": self.dialect,
            "threads": self.threads,
            "ops": self.ops,
            "seconds": round(self.seconds, 3),
            "events_per_s": round(self.ops_per_s, 1),
            "latency": latency_summary_ms(self.latencies_s),
        }


def bench_dialect(dialect: str, url: str, n_ops: int) -> tuple[list[AppendResult], dict[str, Any]]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from registry.audit import service
    from registry.audit.service import AuditEntry
    from registry.audit.verify import verify
    from registry.db import migrate
    from registry.db.engine import make_engine
    from registry.db.session import Sessions, unit_of_work
    from registry.settings import DatabaseSettings, StorageSettings
    from registry.storage.local import LocalArtifactStore

    migrate.upgrade(url)
    if dialect == "postgresql":
        analyze(url)
    engine = make_engine(DatabaseSettings(url=url))
    sessions = Sessions(engine)

    def append_one(tag: str) -> None:
        with unit_of_work(sessions.write) as session:
            service.append(
                session,
                AuditEntry(
                    action="adapter.version.register",
                    resource=f"adapter:bench/bot@{tag}",
                    actor="bench",
                    actor_id=uuid.UUID(int=1),
                    decision={"allowed": True, "policies": ["admins"], "action": "register"},
                    after={"version": tag, "digest": "sha256:" + "ab" * 32, "score": 0.87},
                    request_id=tag,
                ),
            )

    results: list[AppendResult] = []
    try:
        for w in range(WARMUP_OPS):
            append_one(f"warmup-{w}")
        if dialect == "sqlite":
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        for threads in THREADS:

            def worker(threads: int = threads) -> tuple[Callable[[int], None], Callable[[], None]]:
                return (lambda i: append_one(f"t{threads}-{i}")), (lambda: None)

            wall, lat = run_threads(n_ops, threads, worker)
            results.append(AppendResult(dialect, threads, n_ops, wall, lat))
            r = results[-1]
            print(
                f"  {dialect:10} threads={threads}: {r.ops_per_s:8.1f} events/s "
                f"({r.ops} in {r.seconds:.2f} s)",
                flush=True,
            )
        with tempfile.TemporaryDirectory(prefix="bench-audit-store-") as root:
            store = LocalArtifactStore(StorageSettings(backend="local", root=Path(root)))
            key = Ed25519PrivateKey.generate()
            t0 = time.perf_counter()
            with unit_of_work(sessions.read) as session:
                result = verify(session, store, public_keys=[key.public_key()])
            verify_s = time.perf_counter() - t0
    finally:
        engine.dispose()
    verified = {
        "dialect": dialect,
        "ok": result.ok,
        "events": result.events,
        "seconds": round(verify_s, 3),
        "events_per_s": round(result.events / verify_s, 1) if verify_s > 0 else None,
    }
    print(
        f"  {dialect:10} verify: {mark(result.ok)} {result.events} events in {verify_s:.2f} s",
        flush=True,
    )
    return results, verified


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(__doc__ or NAME, argv)
    wait_for_quiet()
    n_ops = 300 if args.quick else 2000
    results: list[AppendResult] = []
    verifications: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp_s:
        tmp = Path(tmp_s)
        for dialect in dialects_of(args):
            with scratch_database(dialect, tmp, f"audit_{dialect}") as url:
                found, verified = bench_dialect(dialect, url, n_ops)
            results += found
            verifications.append(verified)
    print_table(
        f"Audit append, one event per transaction ({n_ops} per case, after {WARMUP_OPS} warm-up)",
        ["db", "threads", "events/s", "p50 ms", "p95 ms", "p99 ms", "max ms"],
        [
            [
                r.dialect,
                r.threads,
                r.ops_per_s,
                *list(latency_summary_ms(r.latencies_s).values())[1:],
            ]
            for r in results
        ],
    )
    print_table(
        "Chain verification (whole log, batches of 1000)",
        ["db", "ok", "events", "seconds", "events/s"],
        [
            [v["dialect"], mark(v["ok"]), v["events"], v["seconds"], v["events_per_s"]]
            for v in verifications
        ],
    )
    checks = [
        {
            "name": f"audit chain verifies after the bench, {v['dialect']}",
            "value": v["events"],
            "target": "ok",
            "ok": bool(v["ok"]),
        }
        for v in verifications
    ]
    write_json(
        NAME,
        {
            "ops_per_case": n_ops,
            "warmup_ops": WARMUP_OPS,
            "results": [r.to_json() for r in results],
            "verify": verifications,
            "checks": checks,
            "run_id": uuid.uuid4().hex,
        },
    )
    return {"name": NAME, "checks": checks}


if __name__ == "__main__":
    main()
