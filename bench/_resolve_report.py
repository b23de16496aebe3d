"""Checks and tables of the resolve benchmark (``bench.resolve``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench._common import mark, print_table

CLIENTS = (1, 8)
TARGET_CEILING_SHARE = 0.80
TARGET_P99_RATIO = 5.0
TARGET_ROUTER_RPS = 1_000_000
TARGET_SERVED_P95_MS = 5.0
CEILING = "ceiling (async def)"
OURS = "ours resolve"
MLFLOW_CLIENT = "mlflow get_model_version_by_alias"
MLFLOW_REST = "mlflow REST alias (httpx)"


@dataclass
class Results:
    """One row per timed case (system, db, clients, connection, rates, latencies, CPU)."""

    warmup_s: float
    duration_s: float
    rows: list[dict[str, Any]] = field(default_factory=list)
    served: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _find(
    res: Results, system: str, dialect: str, clients: int, conn: str
) -> dict[str, Any] | None:
    wanted = (system, dialect, clients, conn)
    for r in res.rows:
        if (r["system"], r["dialect"], r["clients"], r["connection"]) == wanted:
            return r
    return None


def _ceiling(res: Results, clients: int, conn: str) -> dict[str, Any] | None:
    """The async-def ceiling; at keep-alive the better of the first and the final run."""
    rows = [_find(res, CEILING, "-", clients, conn)]
    rows.append(_find(res, f"{CEILING}, again", "-", clients, conn))
    found = [r for r in rows if r is not None]
    return max(found, key=lambda r: r["rps"]) if found else None


def checks_of(res: Results, dialects: Sequence[str], router: dict[str, Any] | None) -> list[Any]:
    checks: list[dict[str, Any]] = []

    def add(name: str, value: float | None, target: str, ok: bool) -> None:
        checks.append({"name": name, "value": value, "target": target, "ok": ok})

    for dialect in dialects:
        for clients in CLIENTS:
            ours = _find(res, OURS, dialect, clients, "keep-alive")
            top = _ceiling(res, clients, "keep-alive")
            share = ours["rps"] / top["rps"] if ours and top else None
            add(
                f"resolve rate / bare FastAPI, {dialect}, {clients} client(s), keep-alive",
                None if share is None else round(share, 3),
                f">= {TARGET_CEILING_SHARE:.2f}",
                share is not None and share >= TARGET_CEILING_SHARE,
            )
            for system, label in (
                (MLFLOW_CLIENT, "MLflow client"),
                (MLFLOW_REST, "MLflow REST, same httpx loop"),
            ):
                ml = _find(res, system, dialect, clients, "keep-alive")
                ratio = ml["p99_ms"] / ours["p99_ms"] if ours and ml else None
                add(
                    f"p99 {label} / ours, {dialect}, {clients} client(s), keep-alive",
                    None if ratio is None else round(ratio, 2),
                    f">= {TARGET_P99_RATIO:g}x",
                    ratio is not None and ratio >= TARGET_P99_RATIO,
                )
    rate = router["checked_rps"] if router else None
    add(
        f"Router local resolves/s ({router['checked_case'] if router else 'not measured'})",
        rate,
        f">= {TARGET_ROUTER_RPS:,}",
        rate is not None and rate >= TARGET_ROUTER_RPS,
    )
    for s in res.served:
        p95 = s.get("p95_ms")
        add(
            f"served-at-T p95 at {s['revisions']:,} revisions, {s['dialect']}",
            p95,
            f"< {TARGET_SERVED_P95_MS:g} ms",
            p95 is not None and p95 < TARGET_SERVED_P95_MS,
        )
    return checks


def print_report(res: Results, checks: list[dict[str, Any]], router: dict[str, Any] | None) -> None:
    rows = []
    for r in res.rows:
        top = _ceiling(res, r["clients"], r["connection"])
        rows.append(
            [
                r["system"],
                r["dialect"],
                r["clients"],
                r["connection"],
                r["rps"],
                r["p50_ms"],
                r["p95_ms"],
                r["p99_ms"],
                r["failures"],
                r["client_cpu_us_per_req"],
                r["server_cpu_us_per_req"],
                f"{100 * r['rps'] / top['rps']:.0f} %" if top else "-",
            ]
        )
    print_table(
        f"Resolve / alias lookup over HTTP ({res.warmup_s:g} s warm-up + {res.duration_s:g} s "
        "per case; client processes share the 2 CPUs with the server)",
        [
            "system",
            "db",
            "clients",
            "connection",
            "req/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "fail",
            "client CPU µs/req",
            "server CPU µs/req",
            "of ceiling",
        ],
        rows,
    )
    if router:
        print_table(
            f"Router, local resolves ({router['source']})",
            ["case", "resolves/s", "ns/resolve"],
            [[c["case"], c["rps"], c["ns_per_resolve"]] for c in router["cases"]],
        )
    if res.served:
        print_table(
            "served at T: GET /api/v1/audit/served (1 client, keep-alive)",
            [
                "db",
                "revisions",
                "load s",
                "status",
                "n",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "server CPU µs/req",
            ],
            [
                [
                    s["dialect"],
                    s["revisions"],
                    s["load_s"],
                    s["probe_status"],
                    s.get("n"),
                    s.get("p50_ms"),
                    s.get("p95_ms"),
                    s.get("p99_ms"),
                    s.get("server_cpu_us_per_req"),
                ]
                for s in res.served
            ],
        )
    print_table(
        "Targets",
        ["check", "value", "target", "met"],
        [[c["name"], c["value"], c["target"], mark(c["ok"])] for c in checks],
    )
    for note in res.notes:
        print(f"note: {note}")
