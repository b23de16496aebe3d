"""Decisions of one metric and of the readout: sides, margins, SRM, multiplicity, evidence."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from registry.experiments import (
    BinaryStats,
    ExperimentDesign,
    MetricSpec,
    RatioStats,
    Readout,
    analyze,
    compare,
    replay,
    sample_size_per_arm,
    srm_check,
)
from registry.experiments.stats import ratio_stats_of

CONV_UP = MetricSpec("conversion", "binary", "primary", "increase", mde=0.05)
CONV_DOWN = MetricSpec("conversion", "binary", "primary", "decrease", mde=0.05)
ERRORS = MetricSpec("errors", "binary", "guardrail", "decrease", margin=0.1)
QUALITY = MetricSpec("quality", "binary", "guardrail", "increase", margin=0.02)
BASE = BinaryStats(20_000, 2_000)
HIGH = BinaryStats(20_000, 2_400)
SAME = BinaryStats(20_000, 2_005)


def decide(spec: MetricSpec, control: BinaryStats, treatment: BinaryStats) -> str:
    return compare(spec, control, treatment, alpha=0.05, planned_units_per_arm=20_000).decision


def test_primary_decision_follows_the_good_direction() -> None:
    assert decide(CONV_UP, BASE, HIGH) == "better"
    assert decide(CONV_UP, HIGH, BASE) == "worse"
    assert decide(CONV_DOWN, BASE, HIGH) == "worse"
    assert decide(CONV_DOWN, HIGH, BASE) == "better"
    assert decide(CONV_UP, BASE, SAME) == "inconclusive"


def test_guardrail_is_worse_within_margin_or_inconclusive() -> None:
    # errors (lower is better): 10 % -> 12 % is surely worse.
    assert decide(ERRORS, BASE, HIGH) == "worse"
    # 10 % -> 10.03 %: the upper bound is well inside +10 % relative.
    result = compare(ERRORS, BASE, SAME, alpha=0.05, planned_units_per_arm=20_000)
    assert result.decision == "within_margin"
    assert result.relative_sequential is not None
    assert result.relative_sequential.high < 0.1
    # quality (higher is better) with a 2 % margin: too few units to exclude -2 %.
    small = compare(
        QUALITY, BinaryStats(2_000, 200), BinaryStats(2_000, 201),
        alpha=0.05, planned_units_per_arm=20_000,
    )  # fmt: skip
    assert (small.decision, small.reason) == ("inconclusive", "margin_not_excluded")

    # The one-sided p-value of "worse": half the two-sided one on the bad side, else 1.
    def one_sided_p(treatment: BinaryStats) -> float:
        got = compare(ERRORS, BASE, treatment, alpha=0.05, planned_units_per_arm=20_000)
        return got.sequential.p_value

    assert one_sided_p(HIGH) < 0.05
    assert one_sided_p(SAME) == 0.5  # a tiny difference on the bad side: two-sided p is 1
    assert one_sided_p(BinaryStats(20_000, 1_900)) == 1.0


def test_too_little_data_is_inconclusive_with_unbounded_intervals() -> None:
    got = compare(
        CONV_UP, BinaryStats(1, 0), BinaryStats(0, 0), alpha=0.05, planned_units_per_arm=100
    )
    assert (got.decision, got.reason) == ("inconclusive", "insufficient_data")
    assert got.sequential.low == -math.inf
    assert got.sequential.p_value == 1.0
    assert got.treatment_mean is None
    assert got.rel_diff is None


def test_a_metric_given_the_wrong_stats_is_refused() -> None:
    ratio = ratio_stats_of([1.0, 2.0])
    with pytest.raises(ValueError, match="needs BinaryStats, got RatioStats"):
        compare(CONV_UP, BASE, ratio, alpha=0.05, planned_units_per_arm=100)


def arms(conv_t: BinaryStats, err_t: BinaryStats) -> dict[str, dict[str, BinaryStats]]:
    return {
        "stable": {"conversion": BASE, "errors": BASE},
        "candidate": {"conversion": conv_t, "errors": err_t},
    }


DESIGN = ExperimentDesign((CONV_UP, ERRORS), planned_units_per_arm=20_000)


def test_readout_ships_only_when_primary_better_and_guardrails_within_margin() -> None:
    ship = analyze(DESIGN, arms(HIGH, SAME))
    assert (ship.decision, ship.reason) == ("better", "all_clear")
    rollback = analyze(DESIGN, arms(HIGH, HIGH))
    assert (rollback.decision, rollback.reason) == ("worse", "guardrail_worse")
    wait = analyze(DESIGN, arms(SAME, SAME))
    assert (wait.decision, wait.reason) == ("inconclusive", "primary_inconclusive")


def test_srm_blocks_every_better() -> None:
    lost = BinaryStats(18_000, 2_200)  # 10 % of the candidate's units lost
    readout = analyze(DESIGN, arms(lost, BinaryStats(18_000, 1_802)))
    assert readout.srm.flagged
    assert (readout.decision, readout.reason) == ("inconclusive", "srm")
    conversion = readout.metrics[0]
    assert (conversion.decision, conversion.reason) == ("inconclusive", "srm")
    # Without the mismatch the same conversion figures would have been "better".
    assert decide(CONV_UP, BASE, lost) == "better"
    # A units count given explicitly is what the SRM check uses.
    fine = analyze(DESIGN, arms(lost, SAME), units={"stable": 20_000, "candidate": 20_010})
    assert not fine.srm.flagged


def test_bonferroni_over_primary_metrics() -> None:
    second = MetricSpec("retention", "binary", "primary", "increase", mde=0.05)
    design = ExperimentDesign((CONV_UP, second, ERRORS), alpha=0.06, planned_units_per_arm=1_000)
    data = {"conversion": BASE, "retention": BASE, "errors": BASE}
    readout = analyze(design, {"stable": data, "candidate": data})
    assert readout.primary_alpha == pytest.approx(0.03)
    assert [m.alpha for m in readout.metrics] == pytest.approx([0.03, 0.03, 0.06])


def test_readout_is_json_safe_and_replays_to_itself() -> None:
    ratio = MetricSpec("latency", "ratio", "guardrail", "decrease", margin=0.05)
    design = ExperimentDesign((CONV_UP, ratio))  # planned size from the observed control
    lat_c = RatioStats(5_000, 60_000.0, 1.2e6, 20_000.0, 100_000.0, 3.0e5)
    lat_t = RatioStats(5_010, 61_000.0, 1.25e6, 20_100.0, 101_000.0, 3.1e5)
    readout = analyze(
        design,
        {
            "stable": {"conversion": BinaryStats(5_000, 500), "latency": lat_c},
            "candidate": {"conversion": BinaryStats(1, 0), "latency": lat_t},
        },
        units={"stable": 5_000, "candidate": 5_010},
    )
    assert readout.planned_from == "observed_control"
    text = json.dumps(readout.to_dict(), allow_nan=False)  # infinite bounds become null
    back = json.loads(text)
    assert Readout.from_dict(back) == readout
    assert replay(back) == readout
    assert back["metrics"][0]["sequential"]["low"] is None
    assert back["multiplicity"].startswith("bonferroni")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metrics": ()}, "at least one metric"),
        ({"metrics": (CONV_UP, CONV_UP)}, "unique"),
        ({"metrics": (CONV_UP,), "alpha": 1.5}, "alpha"),
        ({"metrics": (CONV_UP,), "candidate_share": 0.0}, "candidate_share"),
        ({"metrics": (CONV_UP,), "planned_units_per_arm": 1}, "planned_units_per_arm"),
    ],
)
def test_bad_designs_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ExperimentDesign(**kwargs)


def test_bad_specs_and_arms_are_refused() -> None:
    with pytest.raises(ValueError, match="needs an mde"):
        MetricSpec("x", "binary", "primary", "increase")
    with pytest.raises(ValueError, match="needs a margin"):
        MetricSpec("x", "binary", "guardrail", "increase")
    with pytest.raises(ValueError, match="arms must be exactly"):
        analyze(DESIGN, {"stable": {}, "canary": {}})
    with pytest.raises(ValueError, match="the design has"):
        analyze(DESIGN, {"stable": {"conversion": BASE}, "candidate": {"conversion": BASE}})


def test_the_worked_example_of_docs_experiments_md() -> None:
    """The numbers docs/experiments.md works through by hand."""
    conversion = MetricSpec("conversion", "binary", "primary", "increase", mde=0.05)
    latency = MetricSpec("latency_ms", "ratio", "guardrail", "decrease", margin=0.05)
    design = ExperimentDesign((conversion, latency), planned_units_per_arm=108_215)
    lat_c = RatioStats(20_000, 12583892.9, 10064499528.8, 99981.0, 580757.0, 72941237.3)
    lat_t = RatioStats(20_100, 12545650.5, 10007876592.9, 100671.0, 584183.0, 72950154.0)
    readout = analyze(
        design,
        {
            "stable": {"conversion": BinaryStats(20_000, 2_000), "latency_ms": lat_c},
            "candidate": {"conversion": BinaryStats(20_100, 2_250), "latency_ms": lat_t},
        },
    )
    conv, lat = readout.metrics
    assert readout.srm.p_value == pytest.approx(0.618, abs=5e-4)
    assert conv.fixed.p_value == pytest.approx(0.000102, abs=5e-7)
    seq = conv.sequential
    assert (seq.low, seq.high) == pytest.approx((0.00148, 0.02240), abs=5e-6)
    assert conv.sequential.p_value == pytest.approx(0.0176, abs=5e-5)
    assert conv.information == pytest.approx(0.1853, abs=5e-5)
    assert lat.control_mean == pytest.approx(125.863, abs=5e-4)
    assert (lat.sequential.low, lat.sequential.high) == pytest.approx((-2.578, 0.093), abs=5e-4)
    assert lat.relative_sequential is not None
    assert lat.relative_sequential.high == pytest.approx(0.0007, abs=5e-5)
    assert [conv.decision, lat.decision, readout.decision] == ["better", "within_margin", "better"]
    assert (
        sample_size_per_arm(conversion, baseline_mean=0.1, baseline_sd=0.3, alpha=0.05, power=0.8)
        == 108_215
    )


@pytest.mark.parametrize(
    ("units", "shares", "message"),
    [
        ({"stable": 10, "candidate": 10}, {"stable": 0.5, "canary": 0.5}, "different arms"),
        ({"stable": 10}, {"stable": 1.0}, "at least two arms"),
        ({"stable": 10, "candidate": 10}, {"stable": 0.6, "candidate": 0.5}, "sum to 1"),
        ({"stable": 10, "candidate": 10}, {"stable": 1.0, "candidate": 0.0}, r"in \(0, 1\)"),
        ({"stable": -1, "candidate": 10}, {"stable": 0.5, "candidate": 0.5}, "int >= 0"),
        ({"stable": 1.5, "candidate": 10}, {"stable": 0.5, "candidate": 0.5}, "int >= 0"),
    ],
)
def test_bad_srm_inputs_are_refused(
    units: dict[str, Any], shares: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        srm_check(units, shares)


def test_planned_size_falls_back_to_current_units_without_a_baseline() -> None:
    guard_only = ExperimentDesign((ERRORS,))
    readout = analyze(guard_only, {"stable": {"errors": BASE}, "candidate": {"errors": SAME}})
    assert (readout.planned_from, readout.planned_units_per_arm) == ("current_units", 20_000)
    assert readout.metrics[0].information == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 0.0, "planned_units_per_arm": 100}, "alpha"),
        ({"alpha": 0.05, "planned_units_per_arm": 1}, "planned_units_per_arm"),
        ({"alpha": 0.05, "planned_units_per_arm": 100, "candidate_share": 1.0}, "candidate_share"),
    ],
)
def test_bad_compare_arguments_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compare(CONV_UP, BASE, HIGH, **kwargs)
