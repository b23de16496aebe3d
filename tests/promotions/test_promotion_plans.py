"""Issue 11, point 8: the rollout plan of a promotion request. A plan the requester sends must
meet the floor of the active rollout.yaml (422 plan_below_floor, the failed checks listed); the
approver sees the whole plan and its digest; an approval binds that digest; the plan stored
with the request never changes (not with a policy change, not through the ORM), and what the
canary runs is that plan."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import update

from registry.canary.plans import parse_plans, plan_digest, plan_from_mapping
from registry.db.engine import make_engine
from registry.db.session import unit_of_work
from registry.errors import InvalidPolicy
from registry.policy.loader import default_rollout_text
from registry.promotions.models import FrozenPlanChanged, PromotionRequest
from registry.settings import DatabaseSettings
from tests.factories.governance import create_deployment, decide, record_eval, request_promotion
from tests.factories.rollouts import apply_plans, status
from tests.fixtures.governance import Team

STABLE = {"metric": "error_rate", "compare": "stable", "max_ratio": 1.5, "min_requests": 200}
CAP = {"metric": "error_rate", "compare": "absolute", "max": 0.05, "min_requests": 200}
CAREFUL: dict[str, Any] = {
    "steps": [
        {"share": 5, "min_dwell_s": 900},
        {"share": 20, "min_dwell_s": 900},
        {"share": 100, "min_dwell_s": 900},
    ],
    "analysis": [STABLE, CAP],
    "failure_limit": 1,
    "on_inconclusive": "hold",
}


def _stable(team: Team) -> str:
    """A deployment whose stable version is v1; a v2 with a better score waits to be
    requested. Returns the deployment."""
    v1 = team.push()
    record_eval(team.client, team.dev, v1, 0.80)
    dep = create_deployment(team.client, team.operator, team.base, team.adapter_ref)
    first = request_promotion(team.client, team.dev, v1, dep).json()
    assert decide(team.client, team.approver, first["id"], "approve").json()["state"] == "completed"
    return dep


def _v2(team: Team) -> str:
    v2 = team.push()
    record_eval(team.client, team.dev, v2, 0.85)
    return v2


@pytest.mark.parametrize(
    ("spec", "failed"),
    [
        (
            {"steps": [{"share": 100, "min_dwell_s": 600}], "analysis": [STABLE, CAP]},
            ["first_share"],
        ),
        ({"steps": CAREFUL["steps"]}, ["error_rate_cap"]),
        ({"steps": CAREFUL["steps"], "analysis": [STABLE]}, ["error_rate_cap"]),
        ({**CAREFUL, "failure_limit": 50}, ["failure_limit"]),
        (
            {"steps": [{"share": 100, "min_dwell_s": 0}]},
            ["first_share", "min_dwell_s", "error_rate_cap"],
        ),
    ],
    ids=["single 100 % step", "no analysis", "no cap", "failure limit", "all of it"],
)
def test_a_requester_plan_below_the_floor_is_refused(
    team: Team, shipped_plans: None, spec: dict[str, Any], failed: list[str]
) -> None:
    dep = _stable(team)
    v2 = _v2(team)
    # Named "canary" like the real thing: the name does not matter, the content does.
    r = request_promotion(team.client, team.dev, v2, dep, plan="canary", plan_spec=spec)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "plan_below_floor"
    assert r.json()["context"]["plan"] == "canary"
    assert [f["check"] for f in r.json()["context"]["failures"]] == failed
    # Nothing stored: the deployment has its first promotion only.
    listed = team.client.get("/api/v1/promotions", params={"deployment": dep}).json()["items"]
    assert [p["state"] for p in listed] == ["completed"]


def test_the_approver_sees_the_whole_plan_and_its_digest(team: Team, shipped_plans: None) -> None:
    dep = _stable(team)
    v2 = _v2(team)
    made = request_promotion(team.client, team.dev, v2, dep, plan="careful", plan_spec=CAREFUL)
    assert made.status_code == 201, made.text
    expected = plan_from_mapping("careful", CAREFUL)
    shown = team.client.get(
        f"/api/v1/promotions/{made.json()['id']}", headers=team.approver.headers
    ).json()
    assert shown["plan"] == "careful"
    assert shown["plan_spec"] == expected.to_dict()
    assert shown["plan_digest"] == plan_digest(expected)
    listed = team.client.get("/api/v1/promotions", params={"deployment": dep}).json()["items"]
    assert listed[0]["plan_digest"] == shown["plan_digest"]
    # A named plan is stored in full as well.
    v3 = _v2(team)
    named = request_promotion(team.client, team.dev, v3, dep, plan="gradual").json()
    gradual = parse_plans(default_rollout_text()).plan("gradual")
    assert (named["plan_spec"], named["plan_digest"]) == (gradual.to_dict(), plan_digest(gradual))


def test_an_approval_binds_the_plan_digest(team: Team, shipped_plans: None) -> None:
    dep = _stable(team)
    v2 = _v2(team)
    made = request_promotion(team.client, team.dev, v2, dep, plan="careful", plan_spec=CAREFUL)
    promotion_id, digest = made.json()["id"], made.json()["plan_digest"]
    revision = status(team.client, dep).json()["revision"]
    other = "sha256:" + "0" * 64
    refused = decide(team.client, team.approver, promotion_id, "approve", plan_digest=other)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "plan_digest_mismatch"
    assert refused.json()["context"]["plan_digest"] == digest
    malformed = decide(team.client, team.approver, promotion_id, "approve", plan_digest="abc")
    assert (malformed.status_code, malformed.json()["error"]) == (422, "invalid_request")
    after = team.client.get(f"/api/v1/promotions/{promotion_id}").json()
    assert (after["state"], after["approvals"]) == ("pending", [])
    assert status(team.client, dep).json()["revision"] == revision
    approved = decide(team.client, team.approver, promotion_id, "approve", plan_digest=digest)
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "rolling_out"
    assert status(team.client, dep).json()["share_bp"] == 500  # the plan's first step: 5 %
    events = team.client.get(
        "/api/v1/audit/events",
        params={"action": "promotion.approve", "resource": f"promotion:{promotion_id}"},
    ).json()["items"]
    assert [e["after"]["plan_digest"] for e in events] == [digest]


def test_the_plan_is_frozen_when_requested(team: Team, shipped_plans: None) -> None:
    """A policy change between request and approval changes neither what the approver sees
    nor what the approval starts."""
    dep = _stable(team)
    v2 = _v2(team)
    made = request_promotion(team.client, team.dev, v2, dep, plan="canary").json()
    assert made["plan_spec"]["steps"][0]["share"] == 10
    apply_plans(
        team.client,
        default_rollout_text().replace(
            "- {share: 10, min_dwell_s: 600}", "- {share: 2, min_dwell_s: 600}"
        ),
    )
    shown = team.client.get(f"/api/v1/promotions/{made['id']}").json()
    assert (shown["plan_spec"], shown["plan_digest"]) == (made["plan_spec"], made["plan_digest"])
    approved = decide(
        team.client, team.approver, made["id"], "approve", plan_digest=made["plan_digest"]
    )
    assert approved.status_code == 200, approved.text
    assert status(team.client, dep).json()["share_bp"] == 1000  # 10 %, as requested


def test_a_stored_plan_cannot_change(team: Team, shipped_plans: None, database_url: str) -> None:
    dep = _stable(team)
    v2 = _v2(team)
    made = request_promotion(team.client, team.dev, v2, dep, plan="careful", plan_spec=CAREFUL)
    promotion_id = uuid.UUID(made.json()["id"])
    sessions = team.client.app.state.sessions  # type: ignore[attr-defined]
    # Through the ORM: refused at flush, whatever the code path.
    for attr, value in (
        ("plan_spec", {"steps": [{"share": 100, "min_dwell_s": 0}]}),
        ("plan_name", "other"),
    ):
        with unit_of_work(sessions.write) as session:
            row = session.get_one(PromotionRequest, promotion_id)
            setattr(row, attr, value)
            with pytest.raises(FrozenPlanChanged):
                session.flush()
            session.rollback()
    # Behind the service's back (in the database itself): the approval of the plan the
    # approver saw is refused, since the request's plan is no longer that plan.
    engine = make_engine(DatabaseSettings(url=database_url))
    try:
        with engine.begin() as conn:
            # A Core UPDATE: no ORM flush, so no guard; the database itself allows it.
            conn.execute(
                update(PromotionRequest)
                .where(PromotionRequest.id == promotion_id)
                .values(plan_spec={**CAREFUL, "steps": [{"share": 100, "min_dwell_s": 900}]})
            )
    finally:
        engine.dispose()
    refused = decide(
        team.client,
        team.approver,
        str(promotion_id),
        "approve",
        plan_digest=made.json()["plan_digest"],
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "plan_digest_mismatch"
    assert status(team.client, dep).json()["candidate"] is None


OLD_PLANS = """
default_plan: canary
plans:
  canary:
    steps: [{share: 10, min_dwell_s: 600}, {share: 100, min_dwell_s: 600}]
    analysis:
      - {metric: error_rate, compare: stable, max_ratio: 1.5, min_requests: 200,
         min_stable_requests: 1}
"""


def test_a_policy_set_applied_before_the_floor_still_loads() -> None:
    """A set stored before the floor existed (no floor, no cap, a one-request baseline) is not
    accepted anew, but an existing one loads (the server must start); its plan below the floor
    is refused when a promotion asks for it, and its baseline is raised to min_requests."""
    from registry.access.policy_sets import compile_bundle
    from registry.errors import PlanBelowFloor
    from registry.policy.loader import from_texts, load_default
    from registry.promotions.plans import plan_for_request

    shipped = load_default()
    bundle = from_texts(shipped.schema_text, shipped.policies_text, shipped.gates_text, OLD_PLANS)
    with pytest.raises(InvalidPolicy):
        compile_bundle(bundle, 7)
    active = compile_bundle(bundle, 7, stored=True)
    assert active.plans.plan("canary").rules[0].min_stable_requests == 200
    with pytest.raises(PlanBelowFloor) as info:
        plan_for_request(active.plans, name="canary", spec=None)
    assert [f["check"] for f in info.value.context["failures"]] == ["error_rate_cap"]


def test_a_request_from_before_plans_were_stored(
    team: Team, shipped_plans: None, database_url: str
) -> None:
    """A pending request that carries only a plan name (made before this change): it shows the
    active policy's plan of that name, and its first approval freezes that plan into it."""
    dep = _stable(team)
    v2 = _v2(team)
    made = request_promotion(team.client, team.dev, v2, dep, plan="gradual").json()
    engine = make_engine(DatabaseSettings(url=database_url))
    try:
        with engine.begin() as conn:
            conn.execute(
                update(PromotionRequest)
                .where(PromotionRequest.id == uuid.UUID(made["id"]))
                .values(plan_spec=None)
            )
    finally:
        engine.dispose()
    shown = team.client.get(f"/api/v1/promotions/{made['id']}").json()
    assert (shown["plan_spec"], shown["plan_digest"]) == (made["plan_spec"], made["plan_digest"])
    approved = decide(
        team.client, team.approver, made["id"], "approve", plan_digest=made["plan_digest"]
    )
    assert approved.status_code == 200, approved.text
    assert status(team.client, dep).json()["share_bp"] == 500  # gradual starts at 5 %
    sessions = team.client.app.state.sessions  # type: ignore[attr-defined]
    with unit_of_work(sessions.read) as session:
        row = session.get_one(PromotionRequest, uuid.UUID(made["id"]))
        assert row.plan_spec == made["plan_spec"]
