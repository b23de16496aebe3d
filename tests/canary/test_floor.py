"""The floor of rollout.yaml (issue 11, point 8): what every plan must meet, the shipped plans
included; its strict parser; and the digest an approval binds."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from registry.canary.floor import DEFAULT_FLOOR, Floor, floor_failures
from registry.canary.plans import parse_plans, plan_digest, plan_from_mapping
from registry.errors import InvalidPolicy
from registry.policy.loader import default_rollout_text

FLOOR = {
    "max_first_share": 10,
    "max_experiment_share": 50,
    "min_dwell_s": 300,
    "max_failure_limit": 3,
    "error_rate_cap": {"max": 0.1, "max_min_requests": 1000},
}
STABLE = {"metric": "error_rate", "compare": "stable", "max_ratio": 1.5, "min_requests": 200}
CAP = {"metric": "error_rate", "compare": "absolute", "max": 0.05, "min_requests": 200}
GOOD: dict[str, Any] = {
    "steps": [{"share": 10, "min_dwell_s": 600}, {"share": 100, "min_dwell_s": 600}],
    "analysis": [STABLE, CAP],
    "failure_limit": 1,
}


def checks(**changes: Any) -> list[dict[str, Any]]:
    return floor_failures(plan_from_mapping("p", GOOD | changes), DEFAULT_FLOOR)


# --------------------------------------------------------------------------- shipped plans


def test_shipped_plans_meet_the_shipped_floor() -> None:
    shipped = parse_plans(default_rollout_text())
    assert shipped.floor == DEFAULT_FLOOR
    assert yaml.safe_load(default_rollout_text())["floor"] == FLOOR
    for name, plan in shipped.plans.items():
        assert floor_failures(plan, shipped.floor) == [], name
        # Every shipped plan caps the error rate without needing a stable baseline, and no
        # stable comparison trusts a baseline thinner than the candidate's evidence.
        assert any(r.metric == "error_rate" and r.compare == "absolute" for r in plan.rules)
        assert all(
            r.min_stable_requests >= r.min_requests for r in plan.rules if r.compare == "stable"
        )


def test_the_floor_is_what_the_file_says() -> None:
    text = default_rollout_text().replace(
        "min_dwell_s: 300\n  max_failure", "min_dwell_s: 900\n  max_failure"
    )
    with pytest.raises(InvalidPolicy) as info:
        parse_plans(text)
    errors = info.value.context["errors"]
    assert "plans.canary: below the floor: min_dwell_s (step 0): limit 900.0, got 600.0" in errors
    assert any(e.startswith("plans.gradual: below the floor: min_dwell_s") for e in errors)
    without = (
        default_rollout_text().split("\nfloor:")[0]
        + "\nplans:"
        + default_rollout_text().split("\nplans:")[1]
    )
    assert parse_plans(without).floor == DEFAULT_FLOOR  # no floor: the shipped one


# --------------------------------------------------------------------------- checks


def test_a_good_plan_meets_the_floor() -> None:
    assert checks() == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"steps": [{"share": 100, "min_dwell_s": 600}]},
            [{"check": "first_share", "limit": 10, "value": 100}],
        ),
        (
            {"steps": [{"share": 50, "min_dwell_s": 600}, {"share": 100, "min_dwell_s": 600}]},
            [{"check": "first_share", "limit": 10, "value": 50}],
        ),
        (
            {"steps": [{"share": 5, "min_dwell_s": 60}, {"share": 100, "min_dwell_s": 600}]},
            [{"check": "min_dwell_s", "step": 0, "limit": 300.0, "value": 60.0}],
        ),
        ({"failure_limit": 4}, [{"check": "failure_limit", "limit": 3, "value": 4}]),
        ({"analysis": []}, [{"check": "error_rate_cap"}]),
        ({"analysis": [STABLE]}, [{"check": "error_rate_cap"}]),
        ({"analysis": [STABLE, CAP | {"max": 0.5}]}, [{"check": "error_rate_cap"}]),
        ({"analysis": [CAP | {"min_requests": 5000}]}, [{"check": "error_rate_cap"}]),
        (
            {
                "analysis": [
                    {"metric": "latency_p95_ms", "compare": "absolute", "max": 0.01}
                    | {"min_requests": 1}
                ]
            },
            [{"check": "error_rate_cap"}],
        ),
    ],
    ids=[
        "single 100 % step",
        "first step too large",
        "dwell too short",
        "failure limit too high",
        "no analysis",
        "only a stable comparison",
        "cap too loose",
        "cap judged on too many requests",
        "a cap on another metric",
    ],
)
def test_what_fails_is_listed(changes: dict[str, Any], expected: list[dict[str, Any]]) -> None:
    found = checks(**changes)
    assert [{k: f[k] for k in e} for f, e in zip(found, expected, strict=True)] == expected


def test_every_failed_check_is_listed() -> None:
    found = checks(steps=[{"share": 100, "min_dwell_s": 0}], analysis=[], failure_limit=9)
    assert [f["check"] for f in found] == [
        "first_share",
        "min_dwell_s",
        "failure_limit",
        "error_rate_cap",
    ]


# --------------------------------------------------------------------------- parsing


def _floor_errors(floor: object) -> list[str]:
    doc = yaml.safe_load(default_rollout_text())
    doc["floor"] = floor
    with pytest.raises(InvalidPolicy) as info:
        parse_plans(yaml.safe_dump(doc))
    return [str(e) for e in info.value.context["errors"]]


@pytest.mark.parametrize(
    ("floor", "expected"),
    [
        ("strict", "floor: must be a mapping"),
        ({k: v for k, v in FLOOR.items() if k != "min_dwell_s"}, "floor: missing min_dwell_s"),
        (FLOOR | {"colour": 1}, "floor: unknown key 'colour'"),
        (FLOOR | {"max_first_share": 100}, "floor.max_first_share: must be > 0 and < 100"),
        (FLOOR | {"max_first_share": 0}, "floor.max_first_share: must be > 0 and < 100"),
        (FLOOR | {"min_dwell_s": -1}, "floor.min_dwell_s: must be a finite number"),
        (FLOOR | {"max_failure_limit": 0}, "floor.max_failure_limit: must be an integer >= 1"),
        (FLOOR | {"error_rate_cap": None}, "floor.error_rate_cap: must be a mapping"),
        (FLOOR | {"error_rate_cap": {"max": 0.1}}, "error_rate_cap: missing max_min_requests"),
        (
            FLOOR | {"error_rate_cap": {"max": 2, "max_min_requests": 1}},
            "floor.error_rate_cap.max: an error rate is at most 1",
        ),
        (
            FLOOR | {"error_rate_cap": {"max": 0.1, "max_min_requests": 0}},
            "floor.error_rate_cap.max_min_requests: must be an integer >= 1",
        ),
    ],
)
def test_bad_floors_are_refused(floor: object, expected: str) -> None:
    errs = _floor_errors(floor)
    assert any(expected in e for e in errs), errs


def test_floor_round_trips() -> None:
    assert parse_plans(default_rollout_text()).floor.to_dict() == FLOOR
    assert isinstance(DEFAULT_FLOOR, Floor)


# --------------------------------------------------------------------------- digest


def test_digest_names_the_plan_and_its_content() -> None:
    plan = plan_from_mapping("p", GOOD)
    digest = plan_digest(plan)
    assert digest.startswith("sha256:")
    assert len(digest) == len("sha256:") + 64
    # Stored and read back (JSON), the plan keeps its digest.
    assert plan_digest(plan_from_mapping("p", plan.to_dict(), stored=True)) == digest
    assert plan_digest(plan_from_mapping("q", GOOD)) != digest
    for changed in (
        {"failure_limit": 2},
        {"on_inconclusive": "rollback"},
        {"analysis": [STABLE, CAP | {"max": 0.04}]},
        {"steps": [{"share": 10, "min_dwell_s": 601}, {"share": 100, "min_dwell_s": 600}]},
    ):
        assert plan_digest(plan_from_mapping("p", GOOD | changed)) != digest, changed
