"""Added latency of authorization per request, in-process, against a real database.

What every authorized request does on top of authentication: read the caller's role and
memberships fresh (two indexed queries; a taken-away membership must not survive in a cache),
compare the active policy-set version (one indexed ``max()``), and ask Cedar. Timed per request
on SQLite and PostgreSQL with the shipped default policies, for a developer in 3 namespaces and
an admin; compared with the bare round trip of a trivial query on the same session so the
figure reads as "how many extra round trips".

    python -m bench.authz_request [--quick] [--dialects sqlite,postgresql]
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench._common import (
    dialects_of,
    migrate_and_bootstrap,
    parse_args,
    percentile,
    print_table,
    scratch_database,
    wait_for_quiet,
    write_json,
)

NAME = "authz_request"


def _time(fn: Callable[[], Any], n: int) -> list[float]:
    for _ in range(50):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def bench_dialect(dialect: str, url: str, n: int) -> list[dict[str, Any]]:
    from sqlalchemy import text

    from registry.access.actor import adapter_resource
    from registry.access.policy_sets import PolicyHolder
    from registry.access.subjects import load_actor
    from registry.auth.models import Principal, PrincipalNamespace
    from registry.auth.principal import AuthenticatedPrincipal
    from registry.catalog.models import Namespace
    from registry.db.engine import make_engine
    from registry.db.session import Sessions, unit_of_work
    from registry.policy.loader import default_policy_dir
    from registry.settings import DatabaseSettings

    migrate_and_bootstrap(url)
    engine = make_engine(DatabaseSettings(url=url))
    sessions = Sessions(engine)
    holder = PolicyHolder(default_policy_dir())
    with unit_of_work(sessions.write) as s:
        ns = [Namespace(name=f"team-{i}", description="") for i in range(3)]
        s.add_all(ns)
        dev = Principal(name="dev", kind="human", role="developer")
        adm = Principal(name="boss", kind="human", role="admin")
        s.add_all([dev, adm])
        s.flush()
        s.add_all([PrincipalNamespace(principal_id=dev.id, namespace_id=n.id) for n in ns])
    rows = []
    with unit_of_work(sessions.read) as session:
        for who in (dev, adm):
            principal = AuthenticatedPrincipal(
                id=who.id, name=who.name, kind="human", role=who.role
            )

            def request(principal: AuthenticatedPrincipal = principal) -> None:
                active = holder.current(session)
                actor = load_actor(session, principal, active.authorizer)
                actor.require("register_version", adapter_resource("team-1", "bot"))

            def round_trip() -> None:
                session.execute(text("SELECT 1")).scalar()

            for label, fn in (
                (f"authorize ({who.role})", request),
                ("SELECT 1 round trip", round_trip),
            ):
                us = [s * 1e6 for s in _time(fn, n)]
                rows.append(
                    {
                        "dialect": dialect,
                        "case": label,
                        "p50_us": round(percentile(us, 50), 1),
                        "p95_us": round(percentile(us, 95), 1),
                        "p99_us": round(percentile(us, 99), 1),
                    }
                )
    engine.dispose()
    return rows


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(__doc__ or NAME, argv)
    wait_for_quiet()
    n = 500 if args.quick else 3000
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-authz-") as tmp:
        for dialect in dialects_of(args):
            with scratch_database(dialect, Path(tmp), f"authz_{dialect}") as url:
                results += bench_dialect(dialect, url, n)
    print_table(
        f"Authorization added per request, µs ({n} requests, in-process, one session)",
        ["db", "case", "p50", "p95", "p99"],
        [[r["dialect"], r["case"], r["p50_us"], r["p95_us"], r["p99_us"]] for r in results],
    )
    checks = [
        {
            "name": f"authorize p95, {r['dialect']}, {r['case']}",
            "value": r["p95_us"],
            "target": "report",
            "ok": True,
        }
        for r in results
        if r["case"].startswith("authorize")
    ]
    summary = {"name": NAME, "results": results, "checks": checks}
    write_json(NAME, summary)
    return summary


if __name__ == "__main__":
    main()
