"""Issue 11, point 10: the shipped plans roll a failing candidate back whatever its stable arm
reports. Through the API and the controller, with the shipped ``registry/policies/rollout.yaml``:

* stable arm unreported, candidate failing every request → automatic rollback (it used to hold
  for ever: "inconclusive");
* one failed stable request next to 1000 failed candidate requests → rollback (the shipped
  plan's ``min_stable_requests: 1`` let that one request be the baseline: 100 % errors on the
  stable arm excused 100 % on the candidate);
* a healthy candidate still advances once the step's dwell is over (a controller whose clock
  runs 11 minutes ahead: the shipped steps last 10 minutes).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from registry.traffic.controller import Controller
from tests.factories.rollouts import canary, report, status, tick
from tests.fixtures.governance import Team


def _send(team: Team, dep: str, revision: int, arm: str, requests: int, errors: int) -> None:
    r = report(team.client, team.operator, dep, revision, arm, requests, errors)
    assert r.status_code == 201, r.text


def _latest_decision(team: Team, dep: str) -> dict[str, Any]:
    page = team.client.get(f"/api/v1/deployments/{dep}/decisions", params={"limit": 1}).json()
    latest: dict[str, Any] = page["items"][0]
    return latest


def _judged(evidence: dict[str, Any]) -> list[tuple[str, str]]:
    """(outcome, reason) per rule, in the plan's order: the shipped canary compares the error
    rate with the stable arm's, then caps it."""
    return [(rule["outcome"], rule["reason"]) for rule in evidence["rules"]]


def test_unreported_stable_arm_and_failing_candidate_rolls_back(
    team: Team, shipped_plans: None
) -> None:
    c = canary(team, plan="canary")
    rev = status(team.client, c.deployment).json()["revision"]
    assert status(team.client, c.deployment).json()["share_bp"] == 1000  # the shipped 10 %
    _send(team, c.deployment, rev, "candidate", 1000, 1000)  # no stable report anywhere
    assert [d["action"] for d in tick(team, c.deployment)] == ["rollback"]
    body = status(team.client, c.deployment).json()
    assert (body["stable"]["ref"], body["candidate"]) == (c.v1, None)
    evidence = _latest_decision(team, c.deployment)["evidence"]
    assert _judged(evidence) == [
        ("inconclusive", "too_few_stable_requests"),
        ("fail", "above_max"),
    ]
    assert team.client.get(f"/api/v1/promotions/{c.promotion}").json()["state"] == "rolled_back"


def test_one_failed_stable_request_does_not_excuse_a_failing_candidate(
    team: Team, shipped_plans: None
) -> None:
    c = canary(team, plan="canary")
    rev = status(team.client, c.deployment).json()["revision"]
    _send(team, c.deployment, rev, "stable", 1, 1)
    _send(team, c.deployment, rev, "candidate", 1000, 1000)
    assert [d["action"] for d in tick(team, c.deployment)] == ["rollback"]
    assert status(team.client, c.deployment).json()["candidate"] is None
    evidence = _latest_decision(team, c.deployment)["evidence"]
    # One stable request is no baseline (the shipped plan needs as many as the candidate's 200),
    # and the cap needs none.
    assert _judged(evidence) == [
        ("inconclusive", "too_few_stable_requests"),
        ("fail", "above_max"),
    ]
    assert evidence["stable"]["requests"] == 1


def test_a_healthy_candidate_still_advances(team: Team, shipped_plans: None) -> None:
    c = canary(team, plan="canary")
    rev = status(team.client, c.deployment).json()["revision"]
    _send(team, c.deployment, rev, "stable", 2700, 27)
    _send(team, c.deployment, rev, "candidate", 300, 3)
    assert tick(team, c.deployment) == []  # healthy, within the 10-minute dwell: nothing to say
    later = Controller(
        team.client.app.state.sessions,  # type: ignore[attr-defined]
        interval_s=60,
        clock=lambda: datetime.now(UTC) + timedelta(minutes=11),
    )
    decided = [d for d in later.tick() if d["deployment"] == c.deployment]
    assert [d["action"] for d in decided] == ["advance"]
    body = status(team.client, c.deployment).json()
    assert (body["share_bp"], body["candidate"]["ref"]) == (5000, c.v2)
