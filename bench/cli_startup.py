"""CLI start-up time: ``adapter-registry --help``, ``adapters --help`` and ``--version``.

Each command is run N times as a fresh process (``python -m registry ...`` from the repository
root, the way a user's shell starts it), timed with ``time.perf_counter`` around
``subprocess.run``; the median, the fastest and the 90th percentile are printed. The bare
interpreter (``python -c pass``) is timed the same way, so what the CLI itself adds is visible.
Target (issue 18): ``--help`` < 0.5 s.

    python -m bench.cli_startup [--quick] [--runs N] [--max-wait S]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
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


def time_runs(args: list[str], runs: int) -> list[float]:
    """Wall time in seconds of ``runs`` fresh ``python ARGS`` processes (after one warm-up run
    that fills the page cache and writes the bytecode caches)."""
    command = [sys.executable, *args]
    subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return times


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="5 runs per command")
    parser.add_argument("--runs", type=int, default=21, help="runs per command (default 21)")
    parser.add_argument(
        "--max-wait", type=float, default=600.0, help="seconds to wait for idle CPUs first"
    )
    args = parser.parse_args(argv)
    runs = 5 if args.quick else max(1, args.runs)
    wait_for_quiet(max_wait_s=args.max_wait)
    results: dict[str, Any] = {}
    rows = []
    for label, command in COMMANDS.items():
        times = sorted(time_runs(command, runs))
        median = statistics.median(times)
        p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
        results[label] = {"median_s": median, "min_s": times[0], "p90_s": p90, "times_s": times}
        target = "" if "registry" not in label else mark(median < TARGET_S)
        rows.append([label, f"{median:.3f}", f"{times[0]:.3f}", f"{p90:.3f}", target])
    print_table(
        f"CLI start-up, {runs} runs each (seconds; target: < {TARGET_S} s)",
        ["command", "median", "min", "p90", "< 0.5 s"],
        rows,
    )
    payload = {"runs": runs, "target_s": TARGET_S, "results": results}
    write_json(NAME, payload)
    return payload


if __name__ == "__main__":
    main()
