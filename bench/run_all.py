"""Run every benchmark in sequence and print a summary of the targets (``make bench``).

python -m bench.run_all [--quick] [--dialects sqlite,postgresql] [--only NAME,...]
"""

from __future__ import annotations

import argparse
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from bench import (
    audit_append,
    authz,
    authz_request,
    experiments,
    listing,
    registration,
    router,
    upload,
    validate,
)
from bench._common import mark, print_table

BENCHMARKS: dict[str, Callable[[Sequence[str] | None], dict[str, Any]]] = {
    "registration": registration.main,
    "listing": listing.main,
    "validate": validate.main,
    "upload": upload.main,
    "authz": authz.main,
    "authz_request": authz_request.main,
    "audit_append": audit_append.main,
    "router": router.main,
    "experiments": experiments.main,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--dialects", default="sqlite,postgresql")
    parser.add_argument("--only", default=",".join(BENCHMARKS))
    args = parser.parse_args(argv)
    forwarded = ["--dialects", args.dialects] + (["--quick"] if args.quick else [])
    rows: list[list[Any]] = []
    failed: list[str] = []
    for name in [n.strip() for n in args.only.split(",") if n.strip()]:
        print(f"\n=== {name} ===", flush=True)
        t0 = time.perf_counter()
        try:
            summary = BENCHMARKS[name](forwarded)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            rows.append([name, "benchmark failed", "", "", "✗", ""])
            continue
        took = f"{time.perf_counter() - t0:.0f} s"
        for check in summary["checks"]:
            rows.append(
                [
                    name,
                    check["name"],
                    check["value"],
                    check["target"],
                    mark(bool(check["ok"])),
                    took,
                ]
            )
            took = ""
    print_table(
        "Summary (targets from DESIGN.md, 'Performance targets')",
        ["benchmark", "figure", "value", "target", "met", "took"],
        rows,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
