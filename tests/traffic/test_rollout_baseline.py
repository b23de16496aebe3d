"""What the controller judges a candidate on: the stable figures it compares with when the
stable arm has none in the current window (the same stable version's reports on an earlier
revision; nothing at all → inconclusive, hold), and the step's most recent reports next to the
whole step (a candidate that turns bad late is rolled back)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.factories.rollouts import canary, report, status, tick
from tests.fixtures.governance import Team


def _latest_decision(team: Team, dep: str) -> dict[str, Any]:
    page = team.client.get(f"/api/v1/deployments/{dep}/decisions", params={"limit": 1}).json()
    latest: dict[str, Any] = page["items"][0]
    return latest


def _send(team: Team, dep: str, revision: int, arm: str, requests: int, errors: int) -> str:
    r = report(team.client, team.operator, dep, revision, arm, requests, errors)
    assert r.status_code == 201, r.text
    report_id: str = r.json()["id"]
    return report_id


def test_full_share_is_judged_against_the_stable_figures_of_the_step_before(
    team: Team, fast_plans: None
) -> None:
    c = canary(team, plan="fast")
    stable_ids = []
    for share in (5000, 10_000):  # 5 % → 50 % → 100 %, healthy each time
        rev = status(team.client, c.deployment).json()["revision"]
        stable_ids.append(_send(team, c.deployment, rev, "stable", 1000, 10))
        _send(team, c.deployment, rev, "candidate", 200, 2)
        assert [d["action"] for d in tick(team, c.deployment)] == ["advance"]
        assert status(team.client, c.deployment).json()["share_bp"] == share
    at_full = status(team.client, c.deployment).json()["revision"]
    # At 100 % the stable arm serves nothing; a candidate at 30 % errors must not complete.
    _send(team, c.deployment, at_full, "candidate", 300, 90)
    assert [d["action"] for d in tick(team, c.deployment)] == ["rollback"]
    body = status(team.client, c.deployment).json()
    assert (body["stable"]["ref"], body["candidate"]) == (c.v1, None)
    evidence = _latest_decision(team, c.deployment)["evidence"]
    assert evidence["stable_revision"] == at_full - 1
    assert evidence["stable"]["report_ids"] == [stable_ids[-1]]
    assert evidence["rules"][0]["outcome"] == "fail"
    assert evidence["rules"][0]["stable_value"] == pytest.approx(0.01)


def test_healthy_full_share_still_completes(team: Team, fast_plans: None) -> None:
    c = canary(team, plan="fast")
    for _ in range(2):
        rev = status(team.client, c.deployment).json()["revision"]
        _send(team, c.deployment, rev, "stable", 1000, 10)
        _send(team, c.deployment, rev, "candidate", 200, 2)
        tick(team, c.deployment)
    rev = status(team.client, c.deployment).json()["revision"]
    _send(team, c.deployment, rev, "candidate", 500, 5)
    assert [d["action"] for d in tick(team, c.deployment)] == ["complete"]
    assert status(team.client, c.deployment).json()["stable"]["ref"] == c.v2


def test_a_quiet_stable_arm_is_compared_with_its_reports_before_the_canary(
    team: Team, fast_plans: None
) -> None:
    c = canary(team, plan="fast")
    rev = status(team.client, c.deployment).json()["revision"]
    # v1 alone served revision rev - 1 (before the approval): its figures are the baseline.
    before = _send(team, c.deployment, rev - 1, "stable", 2000, 20)
    _send(team, c.deployment, rev, "candidate", 200, 100)
    assert [d["action"] for d in tick(team, c.deployment)] == ["rollback"]
    evidence = _latest_decision(team, c.deployment)["evidence"]
    assert (evidence["stable_revision"], evidence["stable"]["report_ids"]) == (rev - 1, [before])


def test_no_stable_figures_anywhere_holds(team: Team, fast_plans: None) -> None:
    """Without a baseline the comparison is inconclusive: a candidate within the plan's
    absolute error-rate cap (25 %) holds. (Above the cap it is rolled back whatever the stable
    arm reports: test_rollout_safety.py.)"""
    c = canary(team, plan="fast")
    rev = status(team.client, c.deployment).json()["revision"]
    _send(team, c.deployment, rev, "candidate", 200, 20)
    assert tick(team, c.deployment) == [
        {"deployment": c.deployment, "action": "hold", "reason": "inconclusive"}
    ]
    evidence = _latest_decision(team, c.deployment)["evidence"]
    assert evidence["rules"][0]["reason"] == "too_few_stable_requests"
    assert evidence["stable_revision"] == rev
    assert status(team.client, c.deployment).json()["candidate"]["ref"] == c.v2


def test_a_candidate_that_turns_bad_late_in_a_step_is_rolled_back(
    team: Team, fast_plans: None
) -> None:
    c = canary(team, plan="fast")
    rev = status(team.client, c.deployment).json()["revision"]
    now = datetime.now(UTC)

    def send(arm: str, requests: int, errors: int, minutes_ago: int) -> str:
        end = now - timedelta(minutes=minutes_ago)
        window = {
            "window_start": (end - timedelta(minutes=1)).isoformat(),
            "window_end": end.isoformat(),
        }
        r = report(team.client, team.operator, c.deployment, rev, arm, requests, errors, **window)
        assert r.status_code == 201, r.text
        report_id: str = r.json()["id"]
        return report_id

    # A healthy stretch (stable 1 %, candidate 0 %), then a minute at 60 % on the candidate.
    # Over the whole step: 60 / 5,100 = 1.2 %, under the limit 1.5 x 1 % = 1.5 %: it passes.
    # The newest 100 candidate requests (the plan's minimum) fail on their own.
    send("stable", 20_000, 200, 2)
    send("candidate", 5000, 0, 2)
    send("stable", 2000, 20, 0)
    late = send("candidate", 100, 60, 0)
    assert [d["action"] for d in tick(team, c.deployment)] == ["rollback"]
    evidence = _latest_decision(team, c.deployment)["evidence"]
    assert evidence["window"] == "recent"
    assert evidence["candidate"]["report_ids"] == [late]
    assert evidence["step"]["outcome"] == "pass"
    assert evidence["rules"][0]["outcome"] == "fail"
