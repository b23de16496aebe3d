"""Client-side ``Router`` resolve rate (in-process, single thread, CPython).

A ``Router`` over an in-process ``fetch`` answering a routing table of the documented format
(the real clock, ``refresh_s`` 5 s: every 5 s one conditional refresh answered 304, as against a
live registry). Timed: loops of ``router.resolve(deployment, key)`` over pre-built key lists.

- split at 5 % (500 bp) with distinct random keys: every key hashed once (the cold rate), with
  the per-revision key cache off and with the default cache (65,536 keys, emptied when full);
- split at 5 % with 10,000 distinct keys repeated (a gateway's returning users: cache hits);
- share 0 and 100 %: a fixed route, no hashing;
- for reference, ``registry.canary.hashing.arm`` (the validating function the server uses).

The figure checked against DESIGN.md's ">= 10⁶ resolves/s" is the cold rate with the default
cache (the slowest realistic case): median of the runs.

    python -m bench.router [--quick]
"""

from __future__ import annotations

import itertools
import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench._common import mark, parse_args, print_table, wait_for_quiet, write_json

NAME = "router"
TARGET_PER_S = 1_000_000
SALT = "9f2c4e1a7b3d5f60a1b2c3d4e5f60718"
DEPLOYMENT = "support-prod"


def routing_table(share_bp: int) -> dict[str, Any]:
    def version(n: int, digest: str) -> dict[str, Any]:
        return {
            "ref": f"acme/support-bot@v{n}",
            "version": n,
            "digest": "sha256:" + digest * 64,
            "serving_name": f"acme--support-bot--v{n}--{digest * 12}",
            "peft_type": "LORA",
            "r": 16,
        }

    return {
        "deployment": DEPLOYMENT,
        "revision": 7,
        "hash_spec": "sha256-salt-key-v1",
        "salt": SALT,
        "share_bp": share_bp,
        "base": {"ref": "meta-llama/Llama-3.1-8B@abc123", "manifest_digest": "sha256:" + "0" * 64},
        "stable": version(8, "a"),
        "candidate": version(9, "b"),
        "effective_at": "2026-11-25T20:00:00Z",
    }


def make_router(share_bp: int, cache_size: int | None = None) -> Any:
    from registry.client.router import DEFAULT_CACHE_SIZE, Router

    table = routing_table(share_bp)

    def fetch(deployment: str, etag: str | None) -> tuple[int, dict[str, Any] | None, str | None]:
        return (304, None, etag) if etag else (200, table, '"7"')

    size = DEFAULT_CACHE_SIZE if cache_size is None else cache_size
    router = Router(fetch, refresh_s=5.0, cache_size=size)
    router.resolve(DEPLOYMENT, "warm-up")
    return router


def keys(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"user-{rng.getrandbits(64):016x}" for _ in range(n)]


def rate(loop: Callable[[], None], n: int, runs: int) -> list[float]:
    """Calls per second of ``runs`` timed runs of ``loop`` (``n`` calls each)."""
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        loop()
        out.append(n / (time.perf_counter() - t0))
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from registry.canary.hashing import arm

    args = parse_args(__doc__ or NAME, argv)
    wait_for_quiet()
    n = 200_000 if args.quick else 1_000_000
    runs = 3 if args.quick else 5
    # fresh keys for consecutive runs (a cache keeps only the last 65,536): every lookup misses
    distinct = [keys(n, seed) for seed in range(3)]
    repeated = keys(10_000, 99) * (n // 10_000)

    def resolving(router: Any, key_lists: list[list[str]]) -> Callable[[], None]:
        resolve, lists = router.resolve, itertools.cycle(key_lists)

        def loop() -> None:
            for key in next(lists):
                resolve(DEPLOYMENT, key)

        return loop

    def hashing_arm() -> Callable[[], None]:
        lists = itertools.cycle(distinct)

        def loop() -> None:
            for key in next(lists):
                arm(SALT, key, 500)

        return loop

    cases: list[tuple[str, Callable[[], None]]] = [
        ("split 5 %, distinct keys, key cache off", resolving(make_router(500, 0), distinct)),
        ("split 5 %, distinct keys, default key cache", resolving(make_router(500), distinct)),
        ("split 5 %, 10,000 keys repeated (cache hits)", resolving(make_router(500), [repeated])),
        ("share 0 (fixed route)", resolving(make_router(0), distinct)),
        ("share 100 % (fixed route)", resolving(make_router(10_000), distinct)),
        ("reference: hashing.arm (validating)", hashing_arm()),
    ]
    figures: dict[str, dict[str, float]] = {}
    rows: list[list[Any]] = []
    for label, loop in cases:
        rates = rate(loop, n, runs)
        med = statistics.median(rates)
        figures[label] = {"median_per_s": med, "best_per_s": max(rates), "ns_per_call": 1e9 / med}
        rows.append([label, round(med), round(max(rates)), round(1e9 / med)])
    cold = figures["split 5 %, distinct keys, default key cache"]["median_per_s"]
    ok = cold >= TARGET_PER_S
    print_table(
        f"Router.resolve, single thread ({n:,} calls per run, median of {runs} runs)",
        ["case", "resolves/s (median)", "best", "ns/call"],
        rows,
    )
    checks = [
        {
            "name": "router resolves/s (cold keys, split 5 %)",
            "value": round(cold),
            "target": f">= {TARGET_PER_S:,}",
            "ok": ok,
        }
    ]
    print(f"router resolves/s >= 1,000,000 (cold keys, default cache): {mark(ok)}")
    write_json(NAME, {"calls_per_run": n, "runs": runs, "figures": figures, "checks": checks})
    return {"name": NAME, "checks": checks}


if __name__ == "__main__":
    main()
