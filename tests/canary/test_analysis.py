"""Canary analysis: aggregating reports and judging rules (the controller's next action:
``test_next_action.py``)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from registry.canary.analysis import ArmStats, RuleResult, aggregate, analyze
from registry.canary.plans import Plan, Rule, Step, parse_plans
from registry.policy.loader import default_rollout_text

T0 = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)
P, F, INC, S = "pass", "fail", "inconclusive", "skipped"


@dataclass
class Report:
    id: str
    requests: int
    errors: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    scores: Mapping[str, float] | None = None


def rule(metric: str = "error_rate", **kw: Any) -> Rule:
    defaults: dict[str, Any] = {
        "compare": "stable",
        "higher_is_better": metric.startswith("score:"),
        "min_requests": 100,
        "min_stable_requests": 100,
    }
    return Rule(metric=metric, **(defaults | kw))


def plan(*rules: Rule, failure_limit: int = 1, on_inconclusive: str = "hold") -> Plan:
    steps = (Step(1000, 600.0), Step(5000, 600.0), Step(10_000, 600.0))
    return Plan("t", steps, rules, failure_limit, on_inconclusive)  # type: ignore[arg-type]


def arm(requests: int, errors: int = 0, **kw: Any) -> ArmStats:
    return ArmStats(requests=requests, errors=errors, **kw)


# --------------------------------------------------------------------------- aggregate


def test_aggregate_sums_counts_and_weights_means_by_requests() -> None:
    stats = aggregate(
        [
            Report("r1", 100, 2, 10.0, 50.0, {"q": 0.5}),
            Report("r2", 300, 4, 20.0, None, {"q": 0.9, "h": -1.0}),
            Report("r3", 0, 0, 999.0, 999.0, {"q": 0.0}),  # no requests: weighs nothing
        ]
    )
    assert (stats.requests, stats.errors) == (400, 6)
    assert stats.error_rate == pytest.approx(6 / 400)
    assert stats.latency_p50_ms == pytest.approx((100 * 10 + 300 * 20) / 400)
    assert stats.latency_p95_ms == pytest.approx(50.0)  # only r1 reported it
    assert stats.scores == pytest.approx({"h": -1.0, "q": (50 + 270) / 400})
    assert stats.report_ids == ("r1", "r2", "r3")


def test_aggregate_of_nothing() -> None:
    stats = aggregate([])
    assert stats == ArmStats()
    assert stats.error_rate is None
    assert stats.value("latency_p95_ms") is None
    assert stats.value("score:q") is None


@pytest.mark.parametrize(
    "report",
    [
        Report("x", -1),
        Report("x", 5, -1),
        Report("x", 5, 6),
        Report("x", 5, 0, math.nan),
        Report("x", 5, 0, None, -3.0),
        Report("x", 5, 0, None, math.inf),
        Report("x", 5, 0, scores={"q": math.nan}),
    ],
)
def test_aggregate_refuses_impossible_reports(report: Report) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - several messages
        aggregate([report])


def test_arm_stats_validates_and_knows_metrics() -> None:
    with pytest.raises(ValueError, match="errors"):
        ArmStats(requests=1, errors=2)
    stats = ArmStats(10, 1, 5.0, 9.0, {"q": 0.7})
    metrics = ("error_rate", "latency_p50_ms", "latency_p95_ms", "score:q")
    assert [stats.value(m) for m in metrics] == [0.1, 5.0, 9.0, 0.7]
    with pytest.raises(ValueError, match="unknown metric"):
        stats.value("cpu")


# --------------------------------------------------------------------------- analyze

ERR = rule(max_ratio=1.5, max_delta=0.01)
LAT = rule("latency_p95_ms", max_ratio=1.2)
SCORE = rule("score:q", min_ratio=0.9)
ABS_MAX = rule(compare="absolute", max=0.05)
ABS_MIN = rule("score:q", compare="absolute", min=0.5)
# (name, rule, candidate, stable, share_bp, outcome, reason, limit)
RULE_CASES: list[tuple[str, Rule, ArmStats, ArmStats, int | None, str, str, float | None]] = [
    ("healthy", ERR, arm(1000, 10), arm(9000, 90), 1000, P, "within_limit", 0.025),
    ("at the limit passes", ERR, arm(1000, 25), arm(9000, 90), 1000, P, "within_limit", 0.025),
    ("just above", ERR, arm(1000, 26), arm(9000, 90), 1000, F, "worse_than_stable", 0.025),
    ("stable perfect, delta", ERR, arm(1000, 10), arm(9000), None, P, "within_limit", 0.01),
    (
        "ratio, stable 0",
        rule(max_ratio=2.0),
        arm(200, 1),
        arm(900),
        None,
        F,
        "worse_than_stable",
        0,
    ),
    ("delta only", rule(max_delta=0.05), arm(200, 10), arm(900), None, P, "within_limit", 0.05),
    ("few candidate requests", ERR, arm(99, 99), arm(9000), 1000, INC, "too_few_requests", None),
    ("few stable requests", ERR, arm(100, 99), arm(99), 1000, INC, "too_few_stable_requests", None),
    (
        "min_stable_requests",
        rule(max_ratio=1.5, min_stable_requests=10),
        arm(100),
        arm(10),
        None,
        P,
        "within_limit",
        0.0,
    ),
    (
        "latency",
        LAT,
        arm(100, latency_p95_ms=130.0),
        arm(900, latency_p95_ms=100.0),
        None,
        F,
        "worse_than_stable",
        120.0,
    ),
    (
        "latency not reported",
        LAT,
        arm(100),
        arm(900, latency_p95_ms=1.0),
        None,
        INC,
        "no_data",
        None,
    ),
    (
        "stable latency not reported",
        LAT,
        arm(100, latency_p95_ms=1.0),
        arm(900),
        None,
        INC,
        "no_stable_data",
        None,
    ),
    (
        "score higher is better",
        rule("score:q", min_ratio=0.9, max_delta=0.01),
        arm(100, scores={"q": 0.70}),
        arm(900, scores={"q": 0.80}),
        None,
        F,
        "worse_than_stable",
        0.71,
    ),
    (
        "score better than stable",
        SCORE,
        arm(100, scores={"q": 0.95}),
        arm(900, scores={"q": 0.80}),
        None,
        P,
        "within_limit",
        0.72,
    ),
    ("absolute max", ABS_MAX, arm(100, 6), arm(0), None, F, "above_max", 0.05),
    ("absolute min", ABS_MIN, arm(100, scores={"q": 0.4}), arm(0), 10_000, F, "below_min", 0.5),
    (
        "absolute ignores stable",
        rule(compare="absolute", min=0.0, max=0.05),
        arm(100, 5),
        arm(0),
        None,
        P,
        "within_limit",
        0.05,
    ),
    ("absolute, no data", ABS_MIN, arm(100), arm(0), None, INC, "no_data", None),
    ("100 %, stable silent", ERR, arm(1000, 500), arm(0), 10_000, S, "stable_not_serving", None),
    (
        "100 %, previous stable figures",
        ERR,
        arm(1000, 500),
        arm(9000, 90),
        10_000,
        F,
        "worse_than_stable",
        0.025,
    ),
    ("50 %, stable silent", ERR, arm(1000, 5), arm(0), 5000, INC, "too_few_stable_requests", None),
]


@pytest.mark.parametrize(
    ("rule_", "candidate", "stable", "share_bp", "outcome", "reason", "limit"),
    [c[1:] for c in RULE_CASES],
    ids=[c[0] for c in RULE_CASES],
)
def test_rule_outcomes(
    rule_: Rule,
    candidate: ArmStats,
    stable: ArmStats,
    share_bp: int | None,
    outcome: str,
    reason: str,
    limit: float | None,
) -> None:
    result = analyze(plan(rule_), candidate=candidate, stable=stable, share_bp=share_bp)
    [judged] = result.rules
    assert (judged.outcome, judged.reason) == (outcome, reason)
    assert judged.limit == (None if limit is None else pytest.approx(limit))
    assert judged.metric == rule_.metric
    assert judged.candidate_value == candidate.value(rule_.metric)
    assert result.outcome == {S: P}.get(outcome, outcome)


def test_overall_outcome_fail_beats_inconclusive_beats_pass() -> None:
    passing, failing = rule(max_delta=1.0), rule(compare="absolute", max=0.0)
    cand, stable = arm(100, 1), arm(900, 9)
    assert analyze(plan(), candidate=cand, stable=stable).outcome == P
    assert analyze(plan(passing), candidate=cand, stable=stable).outcome == P
    assert analyze(plan(passing, LAT), candidate=cand, stable=stable).outcome == INC
    result = analyze(plan(passing, LAT, failing), candidate=cand, stable=stable)
    assert result.outcome == F
    assert [r.outcome for r in result.rules] == [P, INC, F]


def test_evidence_is_json_and_names_the_reports() -> None:
    cand = aggregate([Report("c1", 150, 1, latency_p95_ms=80.0), Report("c2", 100, 2)])
    stable = aggregate([Report("s1", 2000, 10, latency_p95_ms=70.0, scores={"q": 1.0})])
    the_plan = parse_plans(default_rollout_text()).plan("gradual")
    result = analyze(the_plan, candidate=cand, stable=stable, share_bp=500)
    evidence = json.loads(json.dumps(result.evidence, allow_nan=False))
    assert evidence["plan"] == "gradual"
    assert evidence["outcome"] == result.outcome == P
    assert evidence["share_bp"] == 500
    assert evidence["candidate"]["report_ids"] == ["c1", "c2"]
    assert evidence["stable"]["report_ids"] == ["s1"]
    assert evidence["candidate"]["error_rate"] == pytest.approx(0.012)
    assert evidence["stable"]["scores"] == {"q": 1.0}
    assert evidence["rules"][0] == {
        "metric": "error_rate",
        "outcome": P,
        "candidate_value": pytest.approx(0.012),
        "stable_value": pytest.approx(0.005),
        "limit": pytest.approx(0.005 * 1.5 + 0.01),
        "reason": "within_limit",
    }
    latency = result.rules[1]
    assert latency == RuleResult("latency_p95_ms", P, 80.0, 70.0, latency.limit, "within_limit")
    assert latency.limit == pytest.approx(105.0)  # only c1 reported a p95
