"""A/B experiment statistics by seeded simulation through the real code (registry/experiments).

Every figure decides each look of each simulated experiment with ``compare`` (or counts
``srm_check`` flags); the data are drawn with numpy (``registry.experiments.simulate``).
1,000 experiments of 20 equally spaced looks each, alpha = 0.05, power 0.8:

1. A/A, binary (10 % conversion) and continuous (exponential latency), up to the planned size:
   share of experiments ever called ``better`` or ``worse`` by the always-valid test; the same
   data with the fixed-horizon test looked at every look (peeking) and only at the last look.
2. A/A guardrail (one-sided): share ever ``worse``.
3. User-clustered traffic (1 + Poisson(4) requests per user, user effect sd 1, request noise
   sd 1), no effect: the delta method per user against a naive per-request analysis.
4. Power at the MDE (10 % relative) at ``sample_size_per_arm``'s sequential size.
5. SRM: false flags on correct 50/50 traffic, and runs flagged when 10 % (and 2 %) of the
   candidate's units are lost, at 10,000 units per arm.

Targets (the acceptance of the experiments package): false positives ≤ 0.073, power ≥ 0.76,
SRM false flags ≤ 0.005 and the 10 % loss flagged in ≥ 95 % of runs.

    python -m bench.experiments [--quick]
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench._common import mark, parse_args, print_table, write_json
from registry.experiments import MetricSpec, sample_size_per_arm
from registry.experiments.simulate import (
    Looks,
    binary_looks,
    clustered_units,
    decide,
    ever,
    exponential_units,
    ratio_looks,
    srm_flag_rate,
)

NAME = "experiments"
ALPHA, POWER, LOOKS = 0.05, 0.8, 20
MAX_FPR, MIN_POWER, MAX_SRM_FALSE, MIN_SRM_CATCH = 0.073, 0.76, 0.005, 0.95
CONVERSION = MetricSpec("conversion", "binary", "primary", "increase", mde=0.1)
LATENCY = MetricSpec("latency", "ratio", "primary", "decrease", mde=0.1)
LATENCY_GUARD = MetricSpec("latency", "ratio", "guardrail", "decrease", margin=0.05)


def _size(spec: MetricSpec, mean: float, sd: float, *, sequential: bool = True) -> int:
    return sample_size_per_arm(
        spec, baseline_mean=mean, baseline_sd=sd, alpha=ALPHA, power=POWER, sequential=sequential
    )


def _rates(spec: MetricSpec, looks: Looks, size: int) -> dict[str, float]:
    seq = decide(spec, looks, alpha=ALPHA, planned_units_per_arm=size)
    peek = decide(spec, looks, alpha=ALPHA, planned_units_per_arm=size, peeking=True)
    return {
        "sequential": ever(seq, "better", "worse"),
        "fixed_peeking": ever(peek, "better", "worse"),
        "fixed_last_look": ever(peek[:, -1:], "better", "worse"),
    }


def _power(spec: MetricSpec, looks: Looks, size: int) -> dict[str, float]:
    codes = decide(spec, looks, alpha=ALPHA, planned_units_per_arm=size)
    better = codes == 1
    first = np.where(better.any(axis=1), better.argmax(axis=1) + 1, LOOKS + 1)
    stopped = first[first <= LOOKS]
    return {
        "power": ever(codes, "better"),
        "wrong_sign": ever(codes, "worse"),
        "median_first_look": float(np.median(stopped)) if stopped.size else math.nan,
    }


def run(experiments: int, srm_runs: int, seed: int = 2026) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    sizes = {
        "binary": (_size(CONVERSION, 0.1, 0.3, sequential=False), _size(CONVERSION, 0.1, 0.3)),
        "continuous": (_size(LATENCY, 1.0, 1.0, sequential=False), _size(LATENCY, 1.0, 1.0)),
    }
    n_bin, n_cont = sizes["binary"][1], sizes["continuous"][1]
    per_bin, per_cont = math.ceil(n_bin / LOOKS), math.ceil(n_cont / LOOKS)
    out: dict[str, Any] = {"sizes": sizes, "experiments": experiments, "looks": LOOKS}
    out["aa_binary"] = _rates(
        CONVERSION, binary_looks(rng, experiments, LOOKS, per_bin, 0.1, 0.1), n_bin
    )
    aa_cont = ratio_looks(rng, experiments, LOOKS, per_cont, exponential_units(1.0, 1.0))
    out["aa_continuous"] = _rates(LATENCY, aa_cont, n_cont)
    guard = decide(LATENCY_GUARD, aa_cont, alpha=ALPHA, planned_units_per_arm=n_cont)
    out["aa_guardrail_worse"] = ever(guard, "worse")
    out["aa_guardrail_within_margin"] = ever(guard[:, -1:], "within_margin")
    draw = clustered_units(1.0, 1.0, sd_user=1.0, sd_request=1.0, extra_requests=4.0)
    users = ratio_looks(np.random.default_rng(seed + 1), experiments, LOOKS, 200, draw)
    naive = ratio_looks(
        np.random.default_rng(seed + 1), experiments, LOOKS, 200, draw, per_request=True
    )
    out["clustered_delta"] = _rates(LATENCY, users, 200 * LOOKS)
    out["clustered_naive"] = _rates(LATENCY, naive, 200 * LOOKS * 5)
    out["power_binary"] = _power(
        CONVERSION, binary_looks(rng, experiments, LOOKS, per_bin, 0.1, 0.11), n_bin
    )
    effect = ratio_looks(rng, experiments, LOOKS, per_cont, exponential_units(1.0, 0.9))
    out["power_continuous"] = _power(LATENCY, effect, n_cont)
    out["srm_false"] = srm_flag_rate(rng, srm_runs, 10_000)
    out["srm_loss_10"] = srm_flag_rate(rng, srm_runs, 10_000, candidate_loss=0.1)
    out["srm_loss_2"] = srm_flag_rate(rng, srm_runs, 10_000, candidate_loss=0.02)
    return out


def _checks(r: dict[str, Any]) -> list[dict[str, Any]]:
    def check(name: str, value: float, target: str, ok: bool) -> dict[str, Any]:
        return {"name": name, "value": round(value, 4), "target": target, "ok": ok}

    fpr = f"≤ {MAX_FPR}"
    return [
        check("A/A binary, ever better/worse", r["aa_binary"]["sequential"], fpr,
              r["aa_binary"]["sequential"] <= MAX_FPR),
        check("A/A continuous, ever better/worse", r["aa_continuous"]["sequential"], fpr,
              r["aa_continuous"]["sequential"] <= MAX_FPR),
        check("A/A guardrail, ever worse", r["aa_guardrail_worse"], fpr,
              r["aa_guardrail_worse"] <= MAX_FPR),
        check("A/A clustered, delta method", r["clustered_delta"]["sequential"], fpr,
              r["clustered_delta"]["sequential"] <= MAX_FPR),
        check("power at MDE, binary", r["power_binary"]["power"], f"≥ {MIN_POWER}",
              r["power_binary"]["power"] >= MIN_POWER),
        check("power at MDE, continuous", r["power_continuous"]["power"], f"≥ {MIN_POWER}",
              r["power_continuous"]["power"] >= MIN_POWER),
        check("SRM false flags", r["srm_false"], f"≤ {MAX_SRM_FALSE}",
              r["srm_false"] <= MAX_SRM_FALSE),
        check("SRM 10 % candidate loss flagged", r["srm_loss_10"], f"≥ {MIN_SRM_CATCH}",
              r["srm_loss_10"] >= MIN_SRM_CATCH),
    ]  # fmt: skip


def _f(value: float) -> str:
    return f"{value:.3f}"


def _print(r: dict[str, Any], took: float) -> None:
    rows = []
    for key in ("aa_binary", "aa_continuous", "clustered_delta", "clustered_naive"):
        v = r[key]
        rows.append([key, _f(v["sequential"]), _f(v["fixed_peeking"]), _f(v["fixed_last_look"])])
    print_table(
        f"False positives, {r['experiments']} A/A experiments x {LOOKS} looks (alpha {ALPHA})",
        ["scenario", "always-valid (mSPRT)", "fixed, every look", "fixed, last look"],
        rows,
    )
    print(f"guardrail A/A: ever worse {r['aa_guardrail_worse']:.4f}, within margin at the last "
          f"look {r['aa_guardrail_within_margin']:.4f}")  # fmt: skip
    rows = [
        [k, *r["sizes"][kind], _f(r[k]["power"]), _f(r[k]["wrong_sign"]), r[k]["median_first_look"]]
        for k, kind in (("power_binary", "binary"), ("power_continuous", "continuous"))
    ]
    print_table(
        "Power at the MDE (10 % relative), 20 looks up to the sequential size",
        ["scenario", "fixed n/arm", "sequential n/arm", "power", "wrong sign", "median look"],
        rows,
    )  # fmt: skip
    print_table(
        "SRM at 10,000 units per arm (threshold p < 0.001)",
        ["traffic", "flagged"],
        [["correct 50/50", _f(r["srm_false"])], ["10 % candidate loss", _f(r["srm_loss_10"])],
         ["2 % candidate loss", _f(r["srm_loss_2"])]],
    )  # fmt: skip
    print_table(
        "Checks",
        ["figure", "value", "target", "met"],
        [[c["name"], _f(c["value"]), c["target"], mark(c["ok"])] for c in _checks(r)],
    )
    print(f"\ntook {took:.1f} s")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(__doc__ or NAME, argv)
    t0 = time.perf_counter()
    result = run(200 if args.quick else 1_000, 2_000 if args.quick else 10_000)
    took = time.perf_counter() - t0
    _print(result, took)
    checks = _checks(result)
    write_json(NAME, {"results": result, "checks": checks, "took_s": took})
    return {"checks": checks}


if __name__ == "__main__":
    main()
