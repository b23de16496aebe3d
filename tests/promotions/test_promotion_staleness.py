"""Issue 11, point 9: a promotion's gates hold at approval, not only at request time. The gates
run again when a request is approved (409 gates_failed, every failing gate listed), and a
request overtaken by a new stable version expires (state expired, audited) so that an old
request cannot start a canary against a stable version it was never compared with (409
stable_changed)."""

from __future__ import annotations

from typing import Any

from tests.factories.governance import create_deployment, decide, record_eval, request_promotion
from tests.factories.rollouts import status
from tests.fixtures.governance import Team


def _stable_v1(team: Team) -> tuple[str, str]:
    v1 = team.push()
    record_eval(team.client, team.dev, v1, 0.80)
    dep = create_deployment(team.client, team.operator, team.base, team.adapter_ref)
    first = request_promotion(team.client, team.dev, v1, dep).json()
    assert decide(team.client, team.approver, first["id"], "approve").json()["state"] == "completed"
    return dep, v1


def _pending(team: Team, dep: str, score: float) -> tuple[str, dict[str, Any]]:
    ref = team.push()
    record_eval(team.client, team.dev, ref, score)
    made = request_promotion(team.client, team.dev, ref, dep, plan="canary").json()
    assert made["state"] == "pending", made
    return ref, made


def _events(team: Team, action: str, promotion_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = team.client.get(
        "/api/v1/audit/events", params={"action": action, "resource": f"promotion:{promotion_id}"}
    ).json()["items"]
    return items


def test_an_old_request_expires_when_a_newer_version_becomes_stable(team: Team) -> None:
    dep, v1 = _stable_v1(team)
    _, old = _pending(team, dep, 0.85)  # better than v1: its gates pass against v1
    v3, newer = _pending(team, dep, 0.95)
    assert decide(team.client, team.approver, newer["id"], "approve").json()["state"] == (
        "rolling_out"
    )
    revision = status(team.client, dep).json()["revision"]
    completed = team.client.post(
        f"/api/v1/deployments/{dep}/rollout",
        json={"share_bp": 10_000, "expected_revision": revision},
        headers=team.operator.headers,
    )
    assert completed.status_code == 200, completed.text
    assert completed.json()["stable"]["ref"] == v3
    # The old request (0.85) would regress against v3 (0.95): it expired with the change.
    shown = team.client.get(f"/api/v1/promotions/{old['id']}").json()
    assert (shown["state"], shown["decision_reason"]) == ("expired", "stable_changed")
    [expired] = _events(team, "promotion.expired", old["id"])
    assert expired["after"]["reason"] == "stable_changed"
    listed = team.client.get("/api/v1/promotions", params={"deployment": dep, "state": "expired"})
    assert [p["id"] for p in listed.json()["items"]] == [old["id"]]
    refused = decide(team.client, team.approver2, old["id"], "approve")
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["error"] == "stable_changed"
    assert (body["context"]["requested_against"], body["context"]["stable"]) == (v1, v3)
    after = status(team.client, dep).json()
    assert (after["stable"]["ref"], after["candidate"]) == (v3, None)
    # Neither reject nor cancel reopens it; a new request is judged against v3.
    assert decide(team.client, team.dev, old["id"], "cancel").status_code == 409


def test_the_first_promotion_expires_requests_made_without_a_stable_version(team: Team) -> None:
    refs = [team.push(), team.push()]  # the adapter exists once its first version does
    dep = create_deployment(team.client, team.operator, team.base, team.adapter_ref)
    made = []
    for ref, score in zip(refs, (0.80, 0.70), strict=True):
        record_eval(team.client, team.dev, ref, score)
        made.append((ref, request_promotion(team.client, team.dev, ref, dep).json()))
    (v1, first), (v2, second) = made
    assert decide(team.client, team.approver, first["id"], "approve").json()["state"] == (
        "completed"
    )
    refused = decide(team.client, team.approver, second["id"], "approve")
    assert refused.status_code == 409
    assert refused.json()["error"] == "stable_changed"
    assert (
        refused.json()["context"]["requested_against"],
        refused.json()["context"]["stable"],
    ) == (
        None,
        v1,
    )
    # Requested again, v2 (0.70) is compared with v1 (0.80): blocked by no_regression.
    again = request_promotion(team.client, team.dev, v2, dep).json()
    assert again["state"] == "blocked"
    assert [g["name"] for g in again["gates"] if not g["passed"]] == ["no_regression"]


def test_gates_are_evaluated_again_at_approval(team: Team) -> None:
    dep, v1 = _stable_v1(team)
    v2, pending = _pending(team, dep, 0.85)
    # A newer score of the stable version (the newest counts): v2 now regresses against it.
    record_eval(team.client, team.dev, v1, 0.90)
    refused = decide(team.client, team.approver, pending["id"], "approve")
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "gates_failed"
    assert refused.json()["context"]["failed_gates"] == ["no_regression"]
    [gate] = refused.json()["context"]["gates"]
    assert gate["detail"]["regressions"][0]["stable"] == 0.90
    shown = team.client.get(f"/api/v1/promotions/{pending['id']}").json()
    assert (shown["state"], shown["approvals"]) == ("pending", [])
    assert status(team.client, dep).json()["candidate"] is None
    # A newer, better score of the candidate: approvable again.
    record_eval(team.client, team.dev, v2, 0.92)
    approved = decide(team.client, team.approver, pending["id"], "approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "rolling_out"


def test_a_gate_policy_tightened_after_the_request_applies_at_approval(team: Team) -> None:
    dep, _ = _stable_v1(team)
    _, pending = _pending(team, dep, 0.85)
    current = team.client.get("/api/v1/policies").json()
    gates = current["gates_text"].split("\nrules:")[0].rstrip() + (
        f'\nrules:\n  - match: {{deployment: "{dep}"}}\n    required_suites: [safety]\n'
    )
    body = {**{k: current[k] for k in ("schema_text", "policies_text", "rollout_text")}}
    r = team.client.post("/api/v1/policies", json={**body, "gates_text": gates, "source": "t"})
    assert r.status_code == 201, r.text
    try:
        refused = decide(team.client, team.approver, pending["id"], "approve")
        assert refused.status_code == 409, refused.text
        assert refused.json()["context"]["failed_gates"] == ["required_suites"]
    finally:
        r = team.client.post(
            "/api/v1/policies", json={**body, "gates_text": current["gates_text"], "source": "t"}
        )
        assert r.status_code == 201, r.text


def test_an_override_still_excuses_the_gates_it_overrode(team: Team) -> None:
    v1 = team.push()  # no evaluation at all: evaluations_present fails
    dep = create_deployment(team.client, team.operator, team.base, team.adapter_ref)
    made = team.client.post(
        "/api/v1/promotions",
        json={"ref": v1, "deployment": dep, "override_reason": "hotfix, evals tomorrow"},
    ).json()
    assert (made["state"], made["gates_passed"]) == ("pending", False)
    approved = decide(team.client, team.approver, made["id"], "approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "completed"
