"""The ``mode`` and ``experiment`` keys of a rollout plan: strict parsing, round trip, the
sample size the plan reports, and the floor of an experiment's fixed split."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from registry.canary.floor import DEFAULT_FLOOR, floor_failures
from registry.canary.plans import plan_digest, plan_from_mapping
from registry.errors import InvalidPolicy
from registry.experiments import sample_size_per_arm

CAP = {"metric": "error_rate", "compare": "absolute", "max": 0.05, "min_requests": 200}
PRIMARY = {
    "name": "thumbs_up",
    "kind": "binary",
    "role": "primary",
    "direction": "increase",
    "mde": 0.05,
    "baseline_mean": 0.3,
}
GUARDRAIL = {
    "name": "latency_ms",
    "kind": "ratio",
    "role": "guardrail",
    "direction": "decrease",
    "margin": 0.1,
}
PLAN: dict[str, Any] = {
    "mode": "experiment",
    "steps": [{"share": 50, "min_dwell_s": 3600}],
    "analysis": [CAP],
    "failure_limit": 1,
    "on_inconclusive": "hold",
    "experiment": {"alpha": 0.05, "power": 0.8, "metrics": [PRIMARY, GUARDRAIL]},
}


def errors_of(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidPolicy) as info:
        plan_from_mapping("ab", raw)
    found: list[str] = info.value.context["errors"]
    return found


def with_experiment(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(PLAN)
    raw["experiment"].update(changes)
    return raw


def test_an_experiment_plan_round_trips_and_reports_its_sample_size() -> None:
    plan = plan_from_mapping("ab", PLAN)
    assert plan.mode == "experiment"
    assert plan.experiment is not None
    assert plan_from_mapping("ab", plan.to_dict()) == plan
    assert plan.to_dict()["experiment"]["metrics"][0]["baseline_mean"] == 0.3
    spec = plan.experiment.primary[0]
    expected = sample_size_per_arm(
        spec, baseline_mean=0.3, baseline_sd=(0.3 * 0.7) ** 0.5, alpha=0.05, power=0.8
    )
    assert plan.experiment.planned_units_per_arm(0.5) == expected
    fixed = plan_from_mapping("ab", with_experiment(units_per_arm=1234)).experiment
    assert fixed is not None
    assert fixed.planned_units_per_arm() == 1234


def test_a_plain_plan_keeps_its_shape_and_digest() -> None:
    raw: dict[str, Any] = {
        "steps": [{"share": 10, "min_dwell_s": 600}, {"share": 100, "min_dwell_s": 600}]
    }
    raw |= {"analysis": [CAP], "failure_limit": 1, "on_inconclusive": "hold"}
    plan = plan_from_mapping("canary", raw)
    assert set(plan.to_dict()) == {"steps", "analysis", "failure_limit", "on_inconclusive"}
    assert plan_digest(plan) == plan_digest(plan_from_mapping("canary", plan.to_dict()))
    assert plan_digest(plan) != plan_digest(plan_from_mapping("canary", {**raw, "experiment": {
        "metrics": [GUARDRAIL]}}))  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({**PLAN, "steps": [{"share": 50, "min_dwell_s": 0}, {"share": 100, "min_dwell_s": 0}]},
         "an experiment holds one split"),
        ({**PLAN, "steps": [{"share": 100, "min_dwell_s": 0}]}, "an experiment holds one split"),
        ({k: v for k, v in PLAN.items() if k != "experiment"}, "needs an experiment section"),
        ({**PLAN, "on_inconclusive": "rollback"}, "ends in a person's decision"),
        ({**PLAN, "mode": "shadow"}, "mode: must be one of rollout, experiment"),
        (with_experiment(metrics=[GUARDRAIL]), "an experiment needs a primary metric"),
        (with_experiment(metrics=[]), "1..16 metrics"),
        (with_experiment(metrics=[PRIMARY, PRIMARY]), "named twice"),
        (with_experiment(metrics=[{**PRIMARY, "mde": 0}]), "mde: must be a finite number > 0"),
        (with_experiment(metrics=[{**PRIMARY, "margin": 0.1}]), "margin: only for a guardrail"),
        (with_experiment(metrics=[PRIMARY, {**GUARDRAIL, "mde": 0.1}]), "mde: only for a primary"),
        (with_experiment(metrics=[PRIMARY, {**GUARDRAIL, "margin": None}]),
         "margin: must be a finite number"),
        (with_experiment(metrics=[{**PRIMARY, "baseline_mean": 1.5}]), "rate is > 0 and < 1"),
        (with_experiment(metrics=[{**PRIMARY, "kind": "ratio"}]), "needs baseline_sd"),
        (with_experiment(metrics=[{k: v for k, v in PRIMARY.items() if k != "baseline_mean"}]),
         "needs baseline_mean (or give units_per_arm)"),
        (with_experiment(metrics=[{**PRIMARY, "name": "Thumbs Up"}]), ".name: lower-case"),
        (with_experiment(metrics=[{**PRIMARY, "role": "secondary"}]), "role: must be one of"),
        (with_experiment(metrics=[{**PRIMARY, "colour": "red"}]), "unknown key 'colour'"),
        (with_experiment(alpha=0.7), "alpha: must be > 0 and <= 0.5"),
        (with_experiment(power=0.3), "power: must be > 0.5"),
        (with_experiment(units_per_arm=1), "units_per_arm: must be an integer >= 2"),
    ],
)  # fmt: skip
def test_bad_experiment_sections_are_refused_with_every_problem(
    raw: dict[str, Any], needle: str
) -> None:
    errors = errors_of(raw)
    assert any(needle in e for e in errors), errors


def test_the_floor_caps_an_experiments_split_not_at_the_canary_share() -> None:
    assert floor_failures(plan_from_mapping("ab", PLAN), DEFAULT_FLOOR) == []
    wide = {**PLAN, "steps": [{"share": 60, "min_dwell_s": 3600}]}
    failures = floor_failures(plan_from_mapping("ab", wide), DEFAULT_FLOOR)
    assert failures == [{"check": "experiment_share", "limit": 50, "value": 60}]
    canary = {**PLAN, "mode": "rollout", "steps": [{"share": 50, "min_dwell_s": 3600},
                                                  {"share": 100, "min_dwell_s": 3600}]}  # fmt: skip
    assert [f["check"] for f in floor_failures(plan_from_mapping("c", canary), DEFAULT_FLOOR)] == [
        "first_share"
    ]
