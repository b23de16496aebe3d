"""CLI start-up time: ``adapter-registry --help``, ``adapters --help`` and ``--version``.

Each command is run N times as a fresh process (``python -m registry ...`` from a checkout's
root, the way a user's shell starts it), timed with ``time.perf_counter`` around
``subprocess.run``; the CPU time the process used is taken from ``getrusage`` (steadier than
wall time on a shared machine). Medians, the fastest run and the 90th percentile are printed.
The bare interpreter (``python -c pass``) is timed the same way, so what the CLI itself adds is
visible. With ``--baseline DIR`` (another checkout, e.g. of ``main``), the same commands are
run from DIR too, alternating run by run with this checkout, so both see the same load.
Target (issue 18): ``--help`` < 0.5 s.

    python -m bench.cli_startup [--quick] [--runs N] [--max-wait S] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._common import ROOT, mark, print_table, wait_for_quiet, write_json

NAME = "cli_startup"
TARGET_S = 0.5

COMMANDS: dict[str, list[str]] = {
    "python -c pass (interpreter alone)": ["-c", "pass"],
    "adapter-registry --help": ["-m", "registry", "--help"],
    "adapter-registry adapters --help": ["-m", "registry", "adapters", "--help"],
    "adapter-registry adapters push --help": ["-m", "registry", "adapters", "push", "--help"],
    "adapter-registry --version": ["-m", "registry", "--version"],
}


def run_once(args: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one fresh ``python ARGS`` process run in ``cwd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def summary(samples: list[tuple[float, float]]) -> dict[str, Any]:
    walls = sorted(w for w, _ in samples)
    cpus = sorted(c for _, c in samples)
    return {
        "median_s": statistics.median(walls),
        "min_s": walls[0],
        "p90_s": walls[min(len(walls) - 1, int(0.9 * len(walls)))],
        "cpu_median_s": statistics.median(cpus),
        "times_s": walls,
        "cpu_s": cpus,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="5 runs per command")
    parser.add_argument("--runs", type=int, default=21, help="runs per command (default 21)")
    parser.add_argument(
        "--max-wait", type=float, default=600.0, help="seconds to wait for idle CPUs first"
    )
    parser.add_argument("--baseline", type=Path, help="another checkout to compare with")
    args = parser.parse_args(argv)
    runs = 5 if args.quick else max(1, args.runs)
    checkouts = {"this": ROOT}
    if args.baseline is not None:
        checkouts["baseline"] = args.baseline.resolve()
    wait_for_quiet(max_wait_s=args.max_wait)
    results: dict[str, dict[str, Any]] = {side: {} for side in checkouts}
    rows = []
    for label, command in COMMANDS.items():
        samples: dict[str, list[tuple[float, float]]] = {side: [] for side in checkouts}
        for cwd in checkouts.values():  # warm-up: page cache and bytecode caches
            run_once(command, cwd)
        for _ in range(runs):
            for side, cwd in checkouts.items():
                samples[side].append(run_once(command, cwd))
        for side in checkouts:
            s = results[side][label] = summary(samples[side])
            target = mark(s["median_s"] < TARGET_S) if "registry" in label else ""
            rows.append(
                [
                    label,
                    side,
                    f"{s['median_s']:.3f}",
                    f"{s['min_s']:.3f}",
                    f"{s['p90_s']:.3f}",
                    f"{s['cpu_median_s']:.3f}",
                    target,
                ]
            )
    print_table(
        f"CLI start-up, {runs} runs each (seconds; target: median < {TARGET_S} s)",
        ["command", "checkout", "median", "min", "p90", "CPU median", "< 0.5 s"],
        rows,
    )
    payload = {
        "runs": runs,
        "target_s": TARGET_S,
        "checkouts": {k: str(v) for k, v in checkouts.items()},
        "results": results,
    }
    write_json(NAME, payload)
    return payload


if __name__ == "__main__":
    main()
