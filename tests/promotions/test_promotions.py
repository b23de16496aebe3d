"""Promotions: gates computed at request time, four-eyes approvals, state moves, override."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from registry.db.engine import make_engine
from registry.settings import DatabaseSettings
from tests.factories.governance import (
    create_deployment,
    decide,
    make_principal,
    record_eval,
    request_promotion,
)
from tests.fixtures.governance import Team


def _gates(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["name"]: g for g in body["gates"]}


def _first_stable(team: Team) -> tuple[str, str]:
    """A deployment whose stable version is v1 (score 0.80)."""
    v1 = team.push()
    assert record_eval(team.client, team.dev, v1, 0.80).status_code == 201
    dep = create_deployment(team.client, team.operator, team.base, team.adapter_ref)
    r = request_promotion(team.client, team.dev, v1, dep)
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "pending"
    assert _gates(r.json())["no_regression"]["passed"]
    approved = decide(team.client, team.approver, r.json()["id"], "approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "completed"
    return dep, v1


def test_first_promotion_makes_the_version_stable_after_one_approval(team: Team) -> None:
    dep, v1 = _first_stable(team)
    status = team.client.get(f"/api/v1/deployments/{dep}", headers=team.dev.headers).json()
    assert status["stable"]["ref"] == v1
    assert status["revision"] == 2
    history = team.client.get(f"/api/v1/deployments/{dep}/history").json()["items"]
    assert [h["reason"] for h in history] == ["promotion", "created"]


def test_no_evaluation_blocks_with_the_gate_named(team: Team) -> None:
    v1 = team.push()
    dep = create_deployment(team.client, team.operator, team.base, team.adapter_ref)
    r = request_promotion(team.client, team.dev, v1, dep)
    assert r.status_code == 201
    body = r.json()
    assert body["state"] == "blocked"
    assert not _gates(body)["evaluations_present"]["passed"]
    # A blocked request cannot be approved.
    refused = decide(team.client, team.approver, body["id"], "approve")
    assert refused.status_code == 409
    assert refused.json()["error"] == "promotion_state_conflict"


def test_regression_against_stable_blocks_then_a_better_eval_passes(team: Team) -> None:
    dep, _ = _first_stable(team)
    v2 = team.push()
    record_eval(team.client, team.dev, v2, 0.70)
    blocked = request_promotion(team.client, team.dev, v2, dep)
    assert blocked.json()["state"] == "blocked"
    gate = _gates(blocked.json())["no_regression"]
    assert not gate["passed"]
    assert "support-qa" in str(gate["detail"])
    # A newer, better score on the same suite and dataset: the next request passes.
    record_eval(team.client, team.dev, v2, 0.85)
    ok = request_promotion(team.client, team.dev, v2, dep)
    assert ok.json()["state"] == "pending"
    done = decide(team.client, team.approver, ok.json()["id"], "approve")
    # With a stable version serving, an approval starts the default plan's canary.
    assert done.json()["state"] == "rolling_out"
    assert done.json()["plan"] == "canary"
    status = team.client.get(f"/api/v1/deployments/{dep}").json()
    assert status["candidate"]["ref"] == v2
    assert status["share_bp"] > 0


def test_scores_on_another_dataset_are_not_compared(team: Team) -> None:
    dep, _ = _first_stable(team)
    v2 = team.push()
    record_eval(team.client, team.dev, v2, 0.10, dataset_digest="sha256:" + "cd" * 32)
    r = request_promotion(team.client, team.dev, v2, dep)
    assert r.json()["state"] == "pending"


@pytest.mark.parametrize("who", ["requester", "registrant"])
def test_four_eyes_requester_and_registrant_refused(team: Team, who: str) -> None:
    v1 = team.push(team.dev)
    record_eval(team.client, team.dev, v1, 0.9)
    dep = create_deployment(team.client, team.operator, team.base, team.adapter_ref)
    # The registrant is dev; the requester is the operator in one case, dev in the other.
    requester = team.dev if who == "registrant" else team.operator
    r = request_promotion(team.client, requester, v1, dep)
    assert r.json()["state"] == "pending"
    # An admin is an approver everywhere, but never of their own request or registration:
    # make the refused principal an approver as well by giving it the approve right via admin.
    refused_as = team.dev if who == "registrant" else team.operator
    res = decide(team.client, refused_as, r.json()["id"], "approve")
    assert res.status_code == 403
    body = res.json()
    assert body["error"] == "separation_of_duties"
    assert body["context"]["rule"] in {"requester", "registrant"}
    assert body["context"]["policy"] == "four-eyes-never-own"
    assert "ck_promotion_approvals_not_requester_nor_registrant" in body["context"]["constraints"]


def test_admin_is_refused_for_own_request_too(team: Team, admin_token: str) -> None:
    v1 = team.push()
    record_eval(team.client, team.dev, v1, 0.9)
    dep = create_deployment(team.client, team.operator, team.base, team.adapter_ref)
    r = team.client.post("/api/v1/promotions", json={"ref": v1, "deployment": dep})
    res = team.client.post(f"/api/v1/promotions/{r.json()['id']}/approve")
    assert res.status_code == 403
    assert res.json()["context"]["rule"] == "requester"


def test_approver_outside_the_namespace_cannot_see_the_request(team: Team) -> None:
    v1 = team.push()
    record_eval(team.client, team.dev, v1, 0.9)
    dep = create_deployment(team.client, team.operator, team.base, team.adapter_ref)
    r = request_promotion(team.client, team.dev, v1, dep)
    outsider = make_principal(team.client, "approver", [])
    res = decide(team.client, outsider, r.json()["id"], "approve")
    assert res.status_code == 404
    assert res.json()["error"] == "promotion_not_found"


def test_developer_cannot_approve_policy_named(team: Team) -> None:
    v1 = team.push()
    record_eval(team.client, team.dev, v1, 0.9)
    dep = create_deployment(team.client, team.operator, team.base, team.adapter_ref)
    r = request_promotion(team.client, team.operator, v1, dep)
    other_dev = make_principal(team.client, "developer", [team.namespace])
    res = decide(team.client, other_dev, r.json()["id"], "approve")
    assert res.status_code == 403
    assert res.json()["error"] == "policy_denied"
    assert res.json()["context"]["policy"] == "default-deny"


def test_two_approvals_required_by_policy(team: Team) -> None:
    """gates.yaml rules can require more approvals; distinct approvers count once each."""
    v1 = team.push()
    record_eval(team.client, team.dev, v1, 0.9)
    dep = create_deployment(team.client, team.operator, team.base, team.adapter_ref)
    _apply_gates(team, f'rules:\n  - match: {{deployment: "{dep}"}}\n    approvals: 2\n')
    try:
        r = request_promotion(team.client, team.dev, v1, dep).json()
        assert r["required_approvals"] == 2
        first = decide(team.client, team.approver, r["id"], "approve")
        assert first.json()["state"] == "pending"
        again = decide(team.client, team.approver, r["id"], "approve")
        assert again.status_code == 409
        second = decide(team.client, team.approver2, r["id"], "approve")
        assert second.json()["state"] == "completed"
        assert [a["approver"] for a in second.json()["approvals"]] == [
            team.approver.name,
            team.approver2.name,
        ]
    finally:
        _apply_gates(team, "")


def _apply_gates(team: Team, rules: str) -> None:
    current = team.client.get("/api/v1/policies").json()
    gates = current["gates_text"].split("\nrules:")[0].rstrip() + "\n" + rules
    r = team.client.post(
        "/api/v1/policies",
        json={
            "schema_text": current["schema_text"],
            "policies_text": current["policies_text"],
            "gates_text": gates,
            "rollout_text": current["rollout_text"],
            "source": "test",
        },
    )
    assert r.status_code == 201, r.text


def test_reject_and_cancel(team: Team) -> None:
    v1 = team.push()
    record_eval(team.client, team.dev, v1, 0.9)
    dep = create_deployment(team.client, team.operator, team.base, team.adapter_ref)
    a = request_promotion(team.client, team.dev, v1, dep).json()
    assert (
        decide(team.client, team.approver, a["id"], "reject", reason="not now").json()["state"]
        == "rejected"
    )
    assert decide(team.client, team.approver, a["id"], "approve").status_code == 409
    b = request_promotion(team.client, team.dev, v1, dep).json()
    # Only the requester (or an admin) cancels.
    assert decide(team.client, team.approver, b["id"], "cancel").status_code == 403
    assert decide(team.client, team.dev, b["id"], "cancel").json()["state"] == "cancelled"


def test_admin_override_needs_a_reason_and_is_audited(team: Team) -> None:
    v1 = team.push()
    dep = create_deployment(team.client, team.operator, team.base, team.adapter_ref)
    # Non-admins cannot override.
    r = request_promotion(team.client, team.dev, v1, dep, override_reason="urgent")
    assert r.status_code == 403
    blank = team.client.post(
        "/api/v1/promotions", json={"ref": v1, "deployment": dep, "override_reason": "  "}
    )
    assert blank.status_code == 400
    ok = team.client.post(
        "/api/v1/promotions",
        json={"ref": v1, "deployment": dep, "override_reason": "hotfix, evals tomorrow"},
    )
    assert ok.status_code == 201
    assert ok.json()["state"] == "pending"
    assert not ok.json()["gates_passed"]
    assert ok.json()["override_reason"] == "hotfix, evals tomorrow"
    events = team.client.get(
        "/api/v1/audit/events", params={"action": "promotion.gates_overridden"}
    ).json()["items"]
    assert any(e["resource"] == f"promotion:{ok.json()['id']}" for e in events)


def test_expired_request_cannot_be_approved(team: Team, database_url: str) -> None:
    v1 = team.push()
    record_eval(team.client, team.dev, v1, 0.9)
    dep = create_deployment(team.client, team.operator, team.base, team.adapter_ref)
    r = request_promotion(team.client, team.dev, v1, dep).json()
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE promotion_requests SET expires_at = :t WHERE id = :id"),
                {"t": "2000-01-01 00:00:00+00:00", "id": _id(r["id"], engine.dialect.name)},
            )
    finally:
        engine.dispose()
    assert team.client.get(f"/api/v1/promotions/{r['id']}").json()["state"] == "expired"
    listed = team.client.get("/api/v1/promotions", params={"deployment": dep, "state": "expired"})
    assert [p["id"] for p in listed.json()["items"]] == [r["id"]]
    pending = team.client.get("/api/v1/promotions", params={"deployment": dep, "state": "pending"})
    assert pending.json()["items"] == []
    res = decide(team.client, team.approver, r["id"], "approve")
    assert res.status_code == 409
    assert res.json()["context"]["state"] == "expired"


def _id(value: str, dialect: str) -> str:
    return value.replace("-", "") if dialect == "sqlite" else value


def test_database_refuses_a_self_approval_row(team: Team, database_url: str) -> None:
    """Four-eyes in the data model: even a buggy service could not store such an approval."""
    v1 = team.push()
    record_eval(team.client, team.dev, v1, 0.9)
    dep = create_deployment(team.client, team.operator, team.base, team.adapter_ref)
    r = request_promotion(team.client, team.operator, v1, dep).json()
    # The registry's engine: SQLite foreign keys are switched on per connection there.
    engine = make_engine(DatabaseSettings(url=database_url))
    try:
        with engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT requested_by_id, registered_by_id FROM promotion_requests "
                    "WHERE id = :id"
                ),
                {"id": _id(r["id"], engine.dialect.name)},
            ).one()
            insert = text(
                "INSERT INTO promotion_approvals (id, request_id, approver_id, requester_id, "
                "registrant_id, approver_ci_identity, registrant_ci_actor, comment, created_at) "
                "VALUES (:id, :req, :approver, :requester, :registrant, :aci, :rci, '', "
                "CURRENT_TIMESTAMP)"
            )
            base = {
                "req": _id(r["id"], engine.dialect.name),
                "requester": row[0],
                "registrant": row[1],
            }
            cases = [
                {"approver": row[0], "aci": None, "rci": None},  # the requester
                {"approver": row[1], "aci": None, "rci": None},  # the registrant
            ]
            for i, case in enumerate(cases):
                with pytest.raises(IntegrityError) as info:
                    conn.execute(insert, {**base, **case, "id": f"{i:032x}"})
                conn.rollback()
                assert "not_requester_nor_registrant" in str(info.value).lower() or (
                    engine.dialect.name == "sqlite"
                    and "check constraint" in str(info.value).lower()
                )
            # Copies that do not match the request are refused by the composite foreign key.
            with pytest.raises(IntegrityError):
                conn.execute(
                    insert,
                    {
                        **base,
                        "requester": row[1],
                        "approver": "f" * 32,
                        "aci": None,
                        "rci": None,
                        "id": "e" * 32,
                    },
                )
            conn.rollback()
    finally:
        engine.dispose()
