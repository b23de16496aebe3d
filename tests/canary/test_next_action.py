"""Canary analysis: the controller's next action, a whole canary with the default plan, and
the shipped plans against failing and healthy candidates."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from registry.canary.analysis import Action, Analysis, ArmStats, analyze, next_action
from registry.canary.plans import parse_plans
from registry.policy.loader import default_rollout_text
from tests.canary.test_analysis import INC, T0, F, P, arm, plan

# --------------------------------------------------------------------------- next_action


def verdict(outcome: str) -> Analysis:
    return Analysis(outcome, [], {})  # type: ignore[arg-type]


RB, LIMIT = "rollback", "failure_limit_reached"
# (name, step_index, elapsed_s, outcome, failures_before, failure_limit, on_inconclusive,
#  expected kind, reason, next_step_index, failures_after)
ACTION_CASES: list[tuple[str, int, float, str, int, int, str, str, str, int | None, int]] = [
    ("dwell, passing", 0, 10, P, 0, 1, "hold", "hold", "dwell", 0, 0),
    ("dwell, inconclusive", 0, 10, INC, 0, 1, RB, "hold", "dwell", 0, 0),
    ("dwell, failing: rollback at once", 0, 10, F, 0, 1, "hold", RB, LIMIT, None, 1),
    ("dwell, failing below limit", 0, 10, F, 0, 3, "hold", "hold", "failure_below_limit", 0, 1),
    ("third consecutive failure", 1, 10, F, 2, 3, "hold", RB, LIMIT, None, 3),
    ("pass resets failures", 1, 10, P, 2, 3, "hold", "hold", "dwell", 1, 0),
    ("inconclusive keeps failures", 1, 10, INC, 2, 3, "hold", "hold", "dwell", 1, 2),
    ("dwell over exactly: advance", 0, 600, P, 0, 1, "hold", "advance", "passed", 1, 0),
    ("dwell over: advance", 1, 601, P, 1, 2, "hold", "advance", "passed", 2, 0),
    ("last step: complete", 2, 900, P, 0, 1, "hold", "complete", "passed_final_step", None, 0),
    ("last step failing", 2, 900, F, 0, 1, "hold", RB, LIMIT, None, 1),
    ("inconclusive after dwell: hold", 1, 900, INC, 0, 1, "hold", "hold", "inconclusive", 1, 0),
    ("inconclusive after dwell: rollback", 1, 900, INC, 0, 1, RB, RB, "inconclusive", None, 0),
    ("clock behind the step start", 0, -30, P, 0, 1, "hold", "hold", "dwell", 0, 0),
]


@pytest.mark.parametrize(
    (
        "step_index",
        "elapsed_s",
        "outcome",
        "failures_before",
        "failure_limit",
        "on_inconclusive",
        "kind",
        "reason",
        "next_step",
        "failures_after",
    ),
    [c[1:] for c in ACTION_CASES],
    ids=[c[0] for c in ACTION_CASES],
)
def test_next_action(
    step_index: int,
    elapsed_s: float,
    outcome: str,
    failures_before: int,
    failure_limit: int,
    on_inconclusive: str,
    kind: str,
    reason: str,
    next_step: int | None,
    failures_after: int,
) -> None:
    action = next_action(
        plan(failure_limit=failure_limit, on_inconclusive=on_inconclusive),
        step_index=step_index,
        step_started_at=T0,
        now=T0 + timedelta(seconds=elapsed_s),
        analysis=verdict(outcome),
        consecutive_failures=failures_before,
    )
    assert (action.kind, action.reason, action.next_step_index, action.failures) == (
        kind,
        reason,
        next_step,
        failures_after,
    )
    assert action.dwell_remaining_s == pytest.approx(max(0.0, 600 - max(0.0, elapsed_s)))


def test_next_action_refuses_bad_input() -> None:
    kw: dict[str, Any] = {"step_started_at": T0, "now": T0, "analysis": verdict(P)}
    with pytest.raises(ValueError, match="step_index"):
        next_action(plan(), step_index=3, consecutive_failures=0, **kw)
    with pytest.raises(ValueError, match="step_index"):
        next_action(plan(), step_index=-1, consecutive_failures=0, **kw)
    with pytest.raises(ValueError, match="consecutive_failures"):
        next_action(plan(), step_index=0, consecutive_failures=-1, **kw)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_action(
            plan(),
            step_index=0,
            step_started_at=T0.replace(tzinfo=None),
            now=T0,
            analysis=verdict(P),
            consecutive_failures=0,
        )


def test_a_whole_canary_with_the_default_plan() -> None:
    """The shipped defaults: 10 → 50 → 100 %, 10-minute dwells, error rate <= stable x 1.5 +
    0.01 with >= 200 candidate and >= 200 stable requests, and <= 5 % whatever the stable arm
    reports."""
    canary = parse_plans(default_rollout_text()).plan()
    healthy = analyze(canary, candidate=arm(300, 3), stable=arm(2700, 27), share_bp=1000)
    early = next_action(
        canary,
        step_index=0,
        step_started_at=T0,
        now=T0 + timedelta(minutes=2),
        analysis=healthy,
        consecutive_failures=0,
    )
    assert early == Action("hold", "dwell", 0, 0, 480.0)
    step, kinds = 0, []
    for _ in range(3):
        action = next_action(
            canary,
            step_index=step,
            step_started_at=T0,
            now=T0 + timedelta(minutes=10),
            analysis=healthy,
            consecutive_failures=0,
        )
        kinds.append(action.kind)
        step = action.next_step_index if action.next_step_index is not None else step
    assert kinds == ["advance", "advance", "complete"]
    thin = analyze(canary, candidate=arm(150, 150), stable=arm(1350), share_bp=1000)
    assert thin.outcome == INC  # 150 < 200 candidate requests
    # A thin stable arm is no baseline (it was: one stable request sufficed), and a candidate
    # failing half its requests fails on the absolute cap with or without one (it held, for
    # ever, without stable figures: issue 11, point 10).
    for stable in (arm(20), arm(0)):
        judged = analyze(canary, candidate=arm(200, 100), stable=stable, share_bp=1000)
        assert judged.outcome == F
        assert [(r.outcome, r.reason) for r in judged.rules] == [
            (INC, "too_few_stable_requests"),
            (F, "above_max"),
        ]
    # Within the cap and without a baseline: inconclusive, the comparison cannot be made.
    quiet = analyze(canary, candidate=arm(200, 4), stable=arm(0), share_bp=1000)
    assert (quiet.outcome, quiet.rules[0].reason) == (INC, "too_few_stable_requests")
    bad = analyze(canary, candidate=arm(200, 6), stable=arm(1800, 18), share_bp=1000)
    assert bad.rules[0].limit == pytest.approx(0.01 * 1.5 + 0.01)
    assert bad.outcome == F
    rollback = next_action(
        canary,
        step_index=0,
        step_started_at=T0,
        now=T0 + timedelta(seconds=5),
        analysis=bad,
        consecutive_failures=0,
    )
    assert (rollback.kind, rollback.reason) == (RB, LIMIT)


# --------------------------------------------------------------------------- issue 11, point 10

SHIPPED = parse_plans(default_rollout_text()).plans


@pytest.mark.parametrize("name", sorted(SHIPPED))
@pytest.mark.parametrize(
    ("stable", "share_bp"),
    [(arm(0), 1000), (arm(1, 1), 1000), (arm(0), 10_000)],
    ids=["stable unreported", "one failed stable request", "100 % step, no baseline"],
)
def test_shipped_plans_fail_a_candidate_failing_every_request(
    name: str, stable: ArmStats, share_bp: int
) -> None:
    """Whatever the stable arm reports (nothing; one request, failed), 1000 failed requests out
    of 1000 fail every shipped plan: they all cap the error rate on its own."""
    judged = analyze(SHIPPED[name], candidate=arm(1000, 1000), stable=stable, share_bp=share_bp)
    assert judged.outcome == F
    rollback = next_action(
        SHIPPED[name],
        step_index=0,
        step_started_at=T0,
        now=T0 + timedelta(seconds=1),
        analysis=judged,
        consecutive_failures=0,
    )
    assert (rollback.kind, rollback.reason) == (RB, LIMIT)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_plans_pass_a_healthy_candidate(name: str) -> None:
    judged = analyze(
        SHIPPED[name],
        candidate=arm(300, 3, latency_p95_ms=100.0),
        stable=arm(2700, 27, latency_p95_ms=100.0),
        share_bp=1000,
    )
    assert judged.outcome == P
