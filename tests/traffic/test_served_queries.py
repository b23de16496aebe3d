"""Served-at-T is what auditors replay in bulk: a fixed, small number of statements per call
(the caller's attributes; the deployment with its names and base; the revision effective at T
with both versions; the promotion with its approvers), whatever the history."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.factories.governance import create_deployment
from tests.factories.rollouts import canary
from tests.fixtures.governance import Team, counted


def test_served_at_costs_four_statements(team: Team, fast_plans: None) -> None:
    c = canary(team)
    params = {"deployment": c.deployment, "at": datetime.now(UTC).isoformat(), "key": "t1"}
    team.client.get("/api/v1/audit/served", params=params)  # warm the token and policy caches
    with counted(team.client) as seen:
        served = team.client.get("/api/v1/audit/served", params=params)
    assert served.status_code == 200, served.text
    body = served.json()
    assert body["candidate"]["ref"] == c.v2
    assert body["promotion"]["approvers"][0]["approver"] == team.approver.name
    queries = [q for q in seen if not q.startswith("BEGIN")]  # SQLite's explicit BEGIN
    assert len(queries) == 4, queries


def test_served_before_any_version(team: Team) -> None:
    """A deployment created but never promoted to: its first revision serves nothing, so no key
    has an arm, and no promotion is named."""
    team.push()  # the adapter exists from its first version on
    dep = create_deployment(team.client, team.operator, team.base, team.adapter_ref)
    params = {"deployment": dep, "at": datetime.now(UTC).isoformat(), "key": "t1"}
    body = team.client.get("/api/v1/audit/served", params=params).json()
    assert (body["revision"], body["stable"], body["candidate"]) == (1, None, None)
    assert (body["share_bp"], body["arm"], body["promotion"]) == (0, None, None)
    assert body["base"]["ref"] == team.base
