"""One rollout the controller cannot analyse does not hold up the others: each is stepped in a
savepoint of its own, the broken one is logged and left as it is."""

from __future__ import annotations

import logging
import uuid

import pytest
from sqlalchemy import update

from registry.db.session import unit_of_work
from registry.deployments.models import Rollout
from tests.factories.rollouts import canary, report, status, tick
from tests.fixtures.governance import Team


def test_a_broken_rollout_is_skipped_and_the_others_advance(
    team: Team, fast_plans: None, caplog: pytest.LogCaptureFixture
) -> None:
    broken, healthy = canary(team, plan="fast"), canary(team, plan="fast")
    app = team.client.app
    # A fault no API call can make: the stored plan of one rollout edited into nonsense.
    with unit_of_work(app.state.sessions.write) as session:  # type: ignore[attr-defined]
        dep_id = session.execute(
            update(Rollout)
            .where(Rollout.promotion_id == uuid.UUID(broken.promotion))
            .values(plan={"steps": "nonsense"})
            .returning(Rollout.deployment_id)
        ).scalar_one()
    assert dep_id is not None
    for c in (broken, healthy):
        rev = status(team.client, c.deployment).json()["revision"]
        assert report(team.client, team.operator, c.deployment, rev, "stable", 1000, 10).is_success
        assert report(team.client, team.operator, c.deployment, rev, "candidate", 200, 2).is_success
    before = status(team.client, broken.deployment).json()
    with caplog.at_level(logging.ERROR, logger="registry.controller"):
        decided = tick(team, broken.deployment, healthy.deployment)
    assert decided == [{"deployment": healthy.deployment, "action": "advance", "reason": "passed"}]
    assert status(team.client, healthy.deployment).json()["share_bp"] == 5000
    assert status(team.client, broken.deployment).json() == before
    assert "controller step failed" in caplog.text
    # The audit chain is intact after the rolled-back savepoint.
    assert team.client.get("/api/v1/audit/verify").json()["ok"] is True
