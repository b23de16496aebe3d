"""The recent slice of a step: the newest reports holding the minimum request count, and how
its verdict combines with the whole step's (a late failure is not hidden by earlier traffic)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from registry.canary.analysis import analyze, combine, recent_slice
from tests.canary.test_analysis import INC, F, P, Report, arm, plan, rule


def test_slice_takes_the_newest_until_the_minimum() -> None:
    newest_first = [Report("c", 120), Report("b", 100), Report("a", 5000)]
    assert [r.id for r in recent_slice(newest_first, 200)] == ["c", "b"]
    assert [r.id for r in recent_slice(newest_first, 120)] == ["c"]
    assert [r.id for r in recent_slice(newest_first, 10_000)] == ["c", "b", "a"]
    assert recent_slice(newest_first, 0) == []
    assert recent_slice([], 200) == []


@given(st.lists(st.integers(0, 500), max_size=12), st.integers(0, 2000))
def test_slice_is_the_shortest_newest_prefix_reaching_the_minimum(
    sizes: list[int], need: int
) -> None:
    reports = [Report(str(i), n) for i, n in enumerate(sizes)]
    taken = recent_slice(reports, need)
    assert taken == reports[: len(taken)]  # a prefix, newest first
    total = sum(r.requests for r in taken)
    if total < need:
        assert taken == reports  # everything, and still short
    elif taken:
        assert total - taken[-1].requests < need  # the last one was needed


ERR = rule(min_requests=200, min_stable_requests=1, max_ratio=1.5, max_delta=0.01)


def test_a_late_failure_fails_the_step_even_when_the_whole_step_passes() -> None:
    the_plan = plan(ERR)
    # 5,000 healthy requests, then 200 at 50 % errors: 2 % over the step (limit 2.5 %).
    whole = analyze(the_plan, candidate=arm(5200, 100), stable=arm(20_000, 200), share_bp=1000)
    recent = analyze(the_plan, candidate=arm(200, 100), stable=arm(800, 8), share_bp=1000)
    assert (whole.outcome, recent.outcome) == (P, F)
    verdict = combine(whole, recent)
    assert verdict.outcome == F
    assert verdict.rules == recent.rules
    assert verdict.evidence["window"] == "recent"
    assert verdict.evidence["candidate"]["requests"] == 200
    assert verdict.evidence["step"]["candidate"]["requests"] == 5200


def test_the_whole_step_decides_otherwise() -> None:
    the_plan = plan(ERR)
    healthy = analyze(the_plan, candidate=arm(400, 2), stable=arm(4000, 40), share_bp=1000)
    thin = analyze(the_plan, candidate=arm(150, 0), stable=arm(1000), share_bp=1000)
    bad = analyze(the_plan, candidate=arm(400, 200), stable=arm(4000, 40), share_bp=1000)
    for step, recent, expected in (
        (healthy, healthy, P),
        (healthy, thin, P),  # an inconclusive recent slice does not hold a passing step
        (bad, healthy, F),  # a recovered recent slice does not clear a failing step
        (thin, healthy, INC),
    ):
        verdict = combine(step, recent)
        assert verdict.outcome == expected
        assert verdict.evidence["window"] == "step"
        assert verdict.evidence["recent"] == recent.evidence
    alone = combine(healthy, None)
    assert (alone.outcome, alone.evidence["window"]) == (P, "step")
    assert "recent" not in alone.evidence
