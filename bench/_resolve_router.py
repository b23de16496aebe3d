"""Local resolve rate of ``registry.client.router.Router`` for the resolve benchmark.

Runs ``bench.router`` (its own benchmark) when that module exists; otherwise times the
``Router`` here: a routing table (the one our server served in this run, or a synthetic one in
the same format with a 10 % canary) behind a fetch that never goes to the network, then
``resolve(deployment, key)`` in a tight loop, median of three passes.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench._common import OUT_DIR

DEPLOYMENT = "chat-prod"
REPEATS = 3


def synthetic_table(share_bp: int = 1000) -> dict[str, Any]:
    def arm(v: int) -> dict[str, Any]:
        digest = "sha256:" + f"{v:02d}" * 32
        return {
            "ref": f"bench/chat@v{v}",
            "version": v,
            "digest": digest,
            "serving_name": f"bench--chat--v{v}--{digest[7:19]}",
            "peft_type": "LORA",
            "r": 4,
        }

    return {
        "deployment": DEPLOYMENT,
        "revision": 3,
        "hash_spec": "sha256-salt-key-v1",
        "salt": "9f2c4e1a7b3d5f60a1b2c3d4e5f60718",
        "share_bp": share_bp,
        "base": {"ref": "tiny-gpt2@main", "manifest_digest": "sha256:" + "cd" * 32},
        "stable": arm(1),
        "candidate": arm(2) if share_bp else None,
        "effective_at": "2026-11-25T00:00:00Z",
    }


def _rate(resolve: Callable[[str, str], Any], deployment: str, keys: list[str]) -> float:
    """Median resolves/s over ``REPEATS`` passes over ``keys`` (after one warm pass)."""
    for key in keys[:10_000]:
        resolve(deployment, key)
    rates = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        for key in keys:
            resolve(deployment, key)
        rates.append(len(keys) / (time.perf_counter() - t0))
    return statistics.median(rates)


def measure_router(table: dict[str, Any], n: int) -> list[dict[str, Any]]:
    from registry.client.router import DEFAULT_CACHE_SIZE, Router

    deployment = str(table["deployment"])
    variants = [
        ("10,000 repeating tenant keys (key cache)", table, 10_000, None),
        ("a new key every call (sha256 each)", table, n, 0),
        (
            "stable only (share 0, no hashing)",
            {**table, "share_bp": 0, "candidate": None},
            10_000,
            None,
        ),
    ]
    out = []
    for label, doc, distinct, cache_size in variants:

        def fetch(_d: str, _etag: str | None, doc: dict[str, Any] = doc) -> tuple[int, Any, str]:
            return 200, doc, '"bench"'

        router = Router(
            fetch,
            refresh_s=3600.0,
            cache_size=DEFAULT_CACHE_SIZE if cache_size is None else cache_size,
        )
        keys = [f"tenant-{i % distinct}" for i in range(n)]
        rps = _rate(router.resolve, deployment, keys)
        out.append({"case": label, "rps": round(rps), "ns_per_resolve": round(1e9 / rps, 1)})
    return out


def bench_router(
    served_table: dict[str, Any] | None, quick: bool, notes: list[str]
) -> dict[str, Any] | None:
    """``{"source", "cases": [{"case", "rps", "ns_per_resolve"}], "checked_case",
    "checked_rps"}``, or None when there is no Router to time."""
    external = _from_bench_router(quick, notes)
    if external is not None:
        return external
    try:
        importlib.import_module("registry.client.router")
    except ImportError:
        notes.append("registry.client.router is missing: Router not measured")
        return None
    table = served_table if served_table and served_table.get("salt") else synthetic_table()
    source = (
        "bench.resolve, the routing table our server served "
        f"(revision {table['revision']}, share {table['share_bp']} bp)"
        if table is served_table
        else "bench.resolve, synthetic table with a 10 % canary (no routing-table endpoint)"
    )
    cases = measure_router(table, 200_000 if quick else 1_000_000)
    return {
        "source": source,
        "cases": cases,
        "checked_case": cases[0]["case"],
        "checked_rps": cases[0]["rps"],
    }


def _from_bench_router(quick: bool, notes: list[str]) -> dict[str, Any] | None:
    """Run ``bench.router`` (it writes bench/out/router.json) and take its checked figure (the
    slowest realistic case) and its table of cases."""
    try:
        module = importlib.import_module("bench.router")
    except ModuleNotFoundError as exc:
        if exc.name != "bench.router":
            raise
        notes.append("bench.router does not exist: Router timed by bench.resolve itself")
        return None
    try:
        summary = module.main(["--quick"] if quick else [])
        check = next(c for c in summary["checks"] if c.get("value") is not None)
        rps = float(check["value"])
    except Exception as exc:
        notes.append(f"bench.router failed ({type(exc).__name__}: {exc}): timed here instead")
        return None
    cases = [{"case": check["name"], "rps": round(rps), "ns_per_resolve": round(1e9 / rps, 1)}]
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        figures = json.loads((OUT_DIR / "router.json").read_text())["figures"]
        cases = [
            {
                "case": label,
                "rps": round(f["median_per_s"]),
                "ns_per_resolve": round(f["ns_per_call"], 1),
            }
            for label, f in figures.items()
        ]
    return {
        "source": "bench.router (median of its runs; bench/out/router.json)",
        "cases": cases,
        "checked_case": check["name"],
        "checked_rps": round(rps),
    }
