"""The whole app under uvicorn (``serve``) and under granian (a Rust ASGI server), same run.

Issue 18 point 6: adopt granian as ``serve``'s default only if resolve gains ≥ 1.5x with every
test green and no protection lost. One database (set up through the API as for
``bench.resolve``: a deployment with a canary), then ``--rounds`` rounds, each starting uvicorn
and granian in turn (the order alternates round by round, so both see the same load from other
work on the 2 CPUs) and timing on each:

* **resolve**: ``GET /api/v1/deployments/{d}/resolve?key=K`` (bearer token, random keys);
* **write**: ``POST /api/v1/namespaces`` (a new name each time: request guard, JSON body,
  insert, audit append);

with 1 and 8 client processes (``bench._resolve_load.run_load``: one ``httpx.Client`` each,
keep-alive), fixed warm-up then fixed window. Reported per server and case: the median rate over
the rounds, the median server CPU per request (user + system of the server's process tree, from
/proc — less sensitive to other load than the rate) and the load average at the start. Then each
server is started with short bounds (``bench._asgi_probe.PROBE_SETTINGS``) and probed with
hostile connections: what ``serve``'s protections become under granian.

    python -m bench.asgi_servers [--quick] [--rounds N] [--dialects sqlite]

granian's own ``GRANIAN_*`` environment variables reach it (e.g. ``GRANIAN_TASK_IMPL=rust``) for
variants; the flags this script sets win over them.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from bench import _resolve_setup as setup
from bench._asgi_probe import PROBE_SETTINGS, probe, start
from bench._common import (
    analyze,
    dialects_of,
    migrate_and_bootstrap,
    print_table,
    running,
    scratch_database,
    start_registry,
    wait_for_quiet,
    write_json,
)
from bench._resolve_load import MakeOp, Op, httpx_op, process_tree, run_load

NAME = "asgi_servers"
SERVERS = ("uvicorn", "granian")
CLIENTS = (1, 8)
TARGET = 1.5


def write_op(base_url: str, token: str, tag: str) -> MakeOp:
    """``POST /api/v1/namespaces`` with a name unique to this client process and round."""

    def make() -> tuple[Op, Callable[[], None]]:
        client = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30.0,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )
        prefix = f"w{tag}-{os.getpid()}"

        def op(i: int) -> bool:
            r = client.post("/api/v1/namespaces", json={"name": f"{prefix}-{i}"})
            return r.status_code == 201

        return op, client.close

    return make


def measure(
    args: Any, url: str, token: str, paths: Sequence[str], rows: list[dict[str, Any]]
) -> None:
    tmp = Path(args.tmp)
    timing = (0.3, 1.0) if args.quick else (0.5, 3.0)
    for rnd in range(args.rounds):
        order = SERVERS if rnd % 2 == 0 else SERVERS[::-1]
        for kind in order:
            with running(start(kind, url, tmp, f"r{rnd}")) as server:
                pids = process_tree(server.pid)
                auth = {"Authorization": f"Bearer {token}"}
                cases: list[tuple[str, MakeOp]] = [
                    ("resolve", httpx_op(server.url, paths, auth, True)),
                    ("write", write_op(server.url, token, f"{rnd}{kind[0]}")),
                ]
                for case, make in cases:
                    for clients in CLIENTS:
                        load = os.getloadavg()[0]
                        res = run_load(make, clients, *timing, pids).to_json()
                        row = {"round": rnd, "server": kind, "case": case, "clients": clients}
                        rows.append({**row, "loadavg_1m": round(load, 2), **res})
                        print(
                            f"  round {rnd} {kind:8} {case:8} {clients} client(s) "
                            f"{res['rps']:7.0f} req/s  server CPU "
                            f"{res['server_cpu_us_per_req']} µs/req  p50 {res['p50_ms']:.2f} ms "
                            f"failures {res['failures']}  load {load:.2f}",
                            flush=True,
                        )


def summarize(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for case in ("resolve", "write"):
        for clients in CLIENTS:
            entry: dict[str, Any] = {"case": case, "clients": clients}
            for kind in SERVERS:
                mine = [
                    r
                    for r in rows
                    if r["server"] == kind and r["case"] == case and r["clients"] == clients
                ]
                cpu = [r["server_cpu_us_per_req"] for r in mine if r["server_cpu_us_per_req"]]
                entry[kind] = {
                    "rps_median": round(statistics.median(r["rps"] for r in mine), 1),
                    "rps_all": [r["rps"] for r in mine],
                    "server_cpu_us_median": round(statistics.median(cpu), 1) if cpu else None,
                    "p50_ms_median": round(statistics.median(r["p50_ms"] for r in mine), 3),
                    "failures": sum(r["failures"] for r in mine),
                    "loadavg_median": round(statistics.median(r["loadavg_1m"] for r in mine), 2),
                }
            u, g = entry["uvicorn"], entry["granian"]
            entry["rate_ratio"] = round(g["rps_median"] / max(u["rps_median"], 1e-9), 2)
            if u["server_cpu_us_median"] and g["server_cpu_us_median"]:
                entry["cpu_ratio"] = round(u["server_cpu_us_median"] / g["server_cpu_us_median"], 2)
            out.append(entry)
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 s windows, 2 rounds")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    parser.add_argument("--dialects", default="sqlite", help="sqlite and/or postgresql")
    parser.add_argument("--max-wait", type=float, default=60.0, help="seconds to wait for quiet")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds = min(args.rounds, 2)
    busy = wait_for_quiet(max_wait_s=args.max_wait)
    rng = random.Random(1)
    keys = [f"tenant-{rng.randrange(1_000_000)}" for _ in range(10_000)]
    base = f"/api/v1/deployments/{setup.DEPLOYMENT}/resolve?key="
    paths = [base + k for k in keys]
    payload: dict[str, Any] = {"cpu_busy_pct_before": busy, "rounds": args.rounds, "dialects": {}}
    with tempfile.TemporaryDirectory(prefix="bench-asgi-") as tmp_dir:
        args.tmp = tmp_dir
        tmp = Path(tmp_dir)
        for dialect in dialects_of(args):
            with scratch_database(dialect, tmp, f"asgi_{dialect}") as url:
                token = migrate_and_bootstrap(url)
                with running(start_registry(url, tmp, "setup")) as server:
                    state = setup.setup_ours(server, token)
                if not state.resolve_ok:
                    raise SystemExit(f"set-up failed: {state.notes}")
                analyze(url)
                rows: list[dict[str, Any]] = []
                print(f"{dialect}: {args.rounds} alternating rounds", flush=True)
                measure(args, url, token, paths, rows)
                summary = summarize(rows)
                probes = {}
                for kind in SERVERS:
                    with running(start(kind, url, tmp, "probe", **PROBE_SETTINGS)) as server:
                        probes[kind] = probe(server.url)
                payload["dialects"][dialect] = {"rows": rows, "summary": summary, "probes": probes}
                report(dialect, summary, probes)
    write_json(NAME, payload)
    return payload


def report(dialect: str, summary: Sequence[dict[str, Any]], probes: dict[str, Any]) -> None:
    table = []
    for e in summary:
        u, g = e["uvicorn"], e["granian"]
        table.append(
            [
                e["case"],
                e["clients"],
                f"{u['rps_median']:.0f}",
                f"{g['rps_median']:.0f}",
                f"{e['rate_ratio']:.2f}",
                u["server_cpu_us_median"],
                g["server_cpu_us_median"],
                e.get("cpu_ratio", "-"),
                f"{u['failures']}/{g['failures']}",
                f"{u['loadavg_median']}/{g['loadavg_median']}",
            ]
        )
    print_table(
        f"{dialect}: medians over the rounds (target for granian: resolve ≥ {TARGET}x)",
        [
            "case",
            "clients",
            "uvicorn req/s",
            "granian req/s",
            "rate x",
            "uvicorn CPU µs/req",
            "granian CPU µs/req",
            "CPU x",
            "failures u/g",
            "load u/g",
        ],
        table,
    )
    print_table(
        "protections (probe settings: header time 2 s, keep-alive 1 s, concurrency 2, "
        "headers 16 KiB)",
        ["probe", *SERVERS],
        [[name, *(str(probes[k][name]) for k in SERVERS)] for name in probes[SERVERS[0]]],
    )


if __name__ == "__main__":
    main()
