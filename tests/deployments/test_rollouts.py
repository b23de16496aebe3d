"""Rollouts through the API: canary start, compare-and-set moves, rollbacks, reports, the
controller's steps and automatic rollback with evidence, resolve and routing tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from registry.canary.hashing import arm as arm_of
from tests.factories.rollouts import canary, report, status, tick
from tests.fixtures.governance import Team


def test_approval_with_a_stable_version_starts_the_canary(team: Team, fast_plans: None) -> None:
    c = canary(team)
    body = status(team.client, c.deployment).json()
    assert body["stable"]["ref"] == c.v1
    assert body["candidate"]["ref"] == c.v2
    assert body["share_bp"] == 500
    history = team.client.get(f"/api/v1/deployments/{c.deployment}/history").json()["items"]
    assert [h["reason"] for h in history] == ["promotion", "promotion", "created"]
    assert history[0]["promotion_id"] == c.promotion


def test_moves_are_compare_and_set(team: Team, fast_plans: None) -> None:
    c = canary(team)
    url = f"/api/v1/deployments/{c.deployment}/rollout"
    current = status(team.client, c.deployment)
    revision = current.json()["revision"]
    assert current.headers["ETag"] == f'"{revision}"'
    missing = team.client.post(url, json={"share_bp": 2500}, headers=team.operator.headers)
    assert missing.status_code == 428
    assert missing.json()["error"] == "precondition_required"
    stale = team.client.post(
        url,
        json={"share_bp": 2500},
        headers={**team.operator.headers, "If-Match": f'"{revision - 1}"'},
    )
    assert stale.status_code == 412
    assert stale.json()["error"] == "precondition_failed"
    moved = team.client.post(
        url, json={"share_bp": 2500}, headers={**team.operator.headers, "If-Match": f'"{revision}"'}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["share_bp"] == 2500
    assert moved.headers["ETag"] == f'"{revision + 1}"'
    # The same If-Match again is now stale: the second of two operators cannot win.
    again = team.client.post(
        url, json={"share_bp": 5000}, headers={**team.operator.headers, "If-Match": f'"{revision}"'}
    )
    assert again.status_code == 412
    # Developers may not move traffic.
    dev = team.client.post(
        url, json={"share_bp": 5000, "expected_revision": revision + 1}, headers=team.dev.headers
    )
    assert dev.status_code == 403


def test_manual_full_share_completes_and_rollback_returns(team: Team, fast_plans: None) -> None:
    c = canary(team)
    rev = status(team.client, c.deployment).json()["revision"]
    done = team.client.post(
        f"/api/v1/deployments/{c.deployment}/rollout",
        json={"share_bp": 10000, "expected_revision": rev},
        headers=team.operator.headers,
    ).json()
    assert done["stable"]["ref"] == c.v2
    assert done["candidate"] is None
    promotion = team.client.get(f"/api/v1/promotions/{c.promotion}").json()
    assert promotion["state"] == "completed"
    # No candidate: a rollback returns to the previous stable version (v1), one new revision.
    back = team.client.post(
        f"/api/v1/deployments/{c.deployment}/rollback",
        json={"expected_revision": done["revision"]},
        headers=team.operator.headers,
    )
    assert back.status_code == 200, back.text
    assert back.json()["stable"]["ref"] == c.v1
    assert back.json()["revision"] == done["revision"] + 1


def test_rollback_drops_the_candidate_and_refuses_unservable_targets(
    team: Team, fast_plans: None
) -> None:
    c = canary(team)
    rev = status(team.client, c.deployment).json()["revision"]
    dropped = team.client.post(
        f"/api/v1/deployments/{c.deployment}/rollback",
        headers={**team.operator.headers, "If-Match": f'"{rev}"'},
    ).json()
    assert dropped["candidate"] is None
    assert dropped["stable"]["ref"] == c.v1
    assert team.client.get(f"/api/v1/promotions/{c.promotion}").json()["state"] == "rolled_back"
    assert 'registry_rollbacks_total{kind="manual"}' in team.client.get("/metrics").text
    # Back to the canary revision: allowed while v2 is servable...
    restored = team.client.post(
        f"/api/v1/deployments/{c.deployment}/rollback",
        json={"to_revision": rev, "expected_revision": rev + 1},
        headers=team.operator.headers,
    ).json()
    assert restored["candidate"]["ref"] == c.v2
    assert restored["share_bp"] == 500
    # ...refused once v2 is archived.
    archived = team.client.post(
        f"/api/v1/adapters/{c.v2.replace('@', '/versions/')}/archive", headers=team.operator.headers
    )
    assert archived.status_code == 200
    refused = team.client.post(
        f"/api/v1/deployments/{c.deployment}/rollback",
        json={"to_revision": rev, "expected_revision": restored["revision"]},
        headers=team.operator.headers,
    )
    assert refused.status_code == 409
    assert refused.json()["error"] == "invalid_transition"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"requests": 10, "errors": 11}, "errors_exceed_requests"),
        ({"revision": 999}, "unknown_revision"),
        ({"window_end": "2999-01-01T00:00:00+00:00"}, "future_window"),
        (
            {
                "window_start": "2026-11-25T10:00:00+00:00",
                "window_end": "2026-11-25T09:00:00+00:00",
            },
            "empty_window",
        ),
    ],
)
def test_bad_reports_are_refused(
    team: Team, fast_plans: None, changes: dict[str, object], reason: str
) -> None:
    c = canary(team)
    rev = status(team.client, c.deployment).json()["revision"]
    body = {"revision": rev, "arm": "candidate", "requests": 10, "errors": 0}
    body.update(changes)
    extra = {k: v for k, v in body.items() if k not in ("revision", "arm", "requests", "errors")}
    r = report(
        team.client,
        team.operator,
        c.deployment,
        int(body["revision"]),
        str(body["arm"]),
        int(body["requests"]),
        int(body["errors"]),
        **extra,
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_report"
    assert r.json()["context"]["reason"] == reason


def test_negative_counts_and_unknown_arms_are_refused(team: Team, fast_plans: None) -> None:
    c = canary(team)
    rev = status(team.client, c.deployment).json()["revision"]
    assert report(team.client, team.operator, c.deployment, rev, "stable", -1, 0).status_code == 422
    assert report(team.client, team.operator, c.deployment, rev, "shadow", 1, 0).status_code == 422
    # Revision 1 (created) has no candidate arm.
    r = report(team.client, team.operator, c.deployment, 1, "candidate", 1, 0)
    assert r.json()["context"]["reason"] == "unknown_arm"
    # Humans without the operator role do not report.
    assert report(team.client, team.dev, c.deployment, rev, "stable", 1, 0).status_code == 403


def test_controller_steps_to_full_and_completes(team: Team, fast_plans: None) -> None:
    c = canary(team, plan="fast")
    for expected_share in (5000, None):
        rev = status(team.client, c.deployment).json()["revision"]
        assert (
            report(team.client, team.operator, c.deployment, rev, "stable", 1000, 10).status_code
            == 201
        )
        assert (
            report(team.client, team.operator, c.deployment, rev, "candidate", 200, 2).status_code
            == 201
        )
        decided = tick(team, c.deployment)
        assert [d["action"] for d in decided] in (["advance"], ["complete"]), decided
        body = status(team.client, c.deployment).json()
        if expected_share is not None:
            assert body["share_bp"] == expected_share
    rev = status(team.client, c.deployment).json()["revision"]
    report(team.client, team.operator, c.deployment, rev, "candidate", 500, 1)
    assert [d["action"] for d in tick(team, c.deployment)] == ["complete"]
    body = status(team.client, c.deployment).json()
    assert body["stable"]["ref"] == c.v2
    assert body["candidate"] is None
    assert team.client.get(f"/api/v1/promotions/{c.promotion}").json()["state"] == "completed"


def test_bad_candidate_is_rolled_back_with_evidence(team: Team, fast_plans: None) -> None:
    c = canary(team, plan="fast")
    rev = status(team.client, c.deployment).json()["revision"]
    # Too few candidate requests: inconclusive, hold.
    report(team.client, team.operator, c.deployment, rev, "stable", 1000, 10)
    report(team.client, team.operator, c.deployment, rev, "candidate", 20, 5)
    assert tick(team, c.deployment) == [
        {"deployment": c.deployment, "action": "hold", "reason": "inconclusive"}
    ]
    # Enough evidence of a candidate error rate far above stable's: rollback.
    bad = report(team.client, team.operator, c.deployment, rev, "candidate", 300, 60).json()
    decided = tick(team, c.deployment)
    assert [d["action"] for d in decided] == ["rollback"]
    body = status(team.client, c.deployment).json()
    assert body["candidate"] is None
    assert body["stable"]["ref"] == c.v1
    history = team.client.get(f"/api/v1/deployments/{c.deployment}/history").json()["items"]
    assert history[0]["reason"] == "automatic_rollback"
    decisions = team.client.get(f"/api/v1/deployments/{c.deployment}/decisions").json()["items"]
    rollback = decisions[0]
    assert rollback["action"] == "rollback"
    assert rollback["revision"] == history[0]["revision"]
    assert bad["id"] in rollback["evidence"]["candidate"]["report_ids"]
    assert rollback["evidence"]["rules"][0]["outcome"] == "fail"
    assert team.client.get(f"/api/v1/promotions/{c.promotion}").json()["state"] == "rolled_back"
    metrics = team.client.get("/metrics").text
    assert 'registry_controller_decisions_total{action="rollback"}' in metrics


def test_resolve_is_sticky_and_matches_the_hash_spec(team: Team, fast_plans: None) -> None:
    c = canary(team)
    table = team.client.get(f"/api/v1/deployments/{c.deployment}/routing-table")
    assert table.status_code == 200
    doc = table.json()
    assert doc["share_bp"] == 500
    assert doc["candidate"]["ref"] == c.v2
    not_modified = team.client.get(
        f"/api/v1/deployments/{c.deployment}/routing-table",
        headers={"If-None-Match": table.headers["ETag"]},
    )
    assert not_modified.status_code == 304
    arms = {}
    for i in range(60):
        key = f"tenant-{i}"
        r = team.client.get(f"/api/v1/deployments/{c.deployment}/resolve", params={"key": key})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["arm"] == arm_of(doc["salt"], key, 500)
        expected = doc["candidate"] if body["arm"] == "candidate" else doc["stable"]
        assert body["serving_name"] == expected["serving_name"]
        assert body["digest"] == expected["digest"]
        assert {f["name"] for f in body["files"]} >= {
            "adapter_config.json",
            "adapter_model.safetensors",
        }
        arms[key] = body["arm"]
    again = team.client.get(
        f"/api/v1/deployments/{c.deployment}/resolve", params={"key": "tenant-7"}
    )
    assert again.json()["arm"] == arms["tenant-7"]
    bad = team.client.get(f"/api/v1/deployments/{c.deployment}/resolve", params={"key": "a\x00b"})
    assert bad.status_code == 400


def test_resolve_needs_membership(team: Team, fast_plans: None) -> None:
    from tests.factories.governance import make_principal

    c = canary(team)
    outsider = make_principal(team.client, "viewer", [])
    r = team.client.get(
        f"/api/v1/deployments/{c.deployment}/resolve", params={"key": "k"}, headers=outsider.headers
    )
    assert r.status_code == 404
    member = make_principal(team.client, "viewer", [team.namespace])
    ok = team.client.get(
        f"/api/v1/deployments/{c.deployment}/resolve", params={"key": "k"}, headers=member.headers
    )
    assert ok.status_code == 200


def test_routing_cache_makes_no_query_per_resolve(team: Team, fast_plans: None) -> None:
    c = canary(team)
    routing = team.client.app.state.routing  # type: ignore[attr-defined]
    routing.sync()  # the set-up's revisions are seen (else the poller may drop the cache mid-loop)
    team.client.get(f"/api/v1/deployments/{c.deployment}/resolve", params={"key": "warm"})
    loads = routing.loads
    for i in range(50):
        team.client.get(f"/api/v1/deployments/{c.deployment}/resolve", params={"key": f"k{i}"})
    assert routing.loads == loads
    # A new revision bumps the epoch; the poller's next read drops the cache.
    rev = status(team.client, c.deployment).json()["revision"]
    team.client.post(
        f"/api/v1/deployments/{c.deployment}/rollout",
        json={"share_bp": 10000, "expected_revision": rev},
        headers=team.operator.headers,
    )
    routing.sync()
    r = team.client.get(f"/api/v1/deployments/{c.deployment}/resolve", params={"key": "k1"})
    assert r.json()["ref"] == c.v2
    assert r.json()["arm"] == "stable"


def test_served_at_time_and_key(team: Team, fast_plans: None) -> None:
    before_any = datetime.now(UTC) - timedelta(days=1)
    c = canary(team)
    during = datetime.now(UTC)
    doc = team.client.get(f"/api/v1/deployments/{c.deployment}/routing-table").json()
    rev = doc["revision"]
    team.client.post(
        f"/api/v1/deployments/{c.deployment}/rollback",
        json={"expected_revision": rev},
        headers=team.operator.headers,
    )
    url = "/api/v1/audit/served"
    missing = team.client.get(
        url, params={"deployment": c.deployment, "at": before_any.isoformat()}
    )
    assert missing.status_code == 404
    assert missing.json()["error"] == "nothing_served"
    key = next(f"t{i}" for i in range(10_000) if arm_of(doc["salt"], f"t{i}", 500) == "candidate")
    then = team.client.get(
        url, params={"deployment": c.deployment, "at": during.isoformat(), "key": key}
    ).json()
    assert then["revision"] == rev
    assert then["stable"]["ref"] == c.v1
    assert then["candidate"]["ref"] == c.v2
    assert then["share_bp"] == 500
    assert then["arm"] == "candidate"
    assert then["promotion"]["approvers"][0]["approver"] == team.approver.name
    assert then["promotion"]["requested_by"] == team.dev.name
    now = team.client.get(
        url, params={"deployment": c.deployment, "at": datetime.now(UTC).isoformat(), "key": key}
    ).json()
    assert now["candidate"] is None
    assert now["arm"] == "stable"
    since = team.client.get(
        f"/api/v1/deployments/{c.deployment}/history", params={"since": during.isoformat()}
    ).json()["items"]
    assert [h["reason"] for h in since] == ["manual_rollback"]


def test_restored_canary_is_watched_again(team: Team, fast_plans: None) -> None:
    """rollback --to-revision back to a canary resumes its rollout: bad figures still roll
    it back automatically."""
    c = canary(team, plan="fast")
    rev = status(team.client, c.deployment).json()["revision"]
    team.client.post(
        f"/api/v1/deployments/{c.deployment}/rollback",
        json={"expected_revision": rev},
        headers=team.operator.headers,
    )
    restored = team.client.post(
        f"/api/v1/deployments/{c.deployment}/rollback",
        json={"to_revision": rev, "expected_revision": rev + 1},
        headers=team.operator.headers,
    ).json()
    assert restored["candidate"]["ref"] == c.v2
    assert team.client.get(f"/api/v1/promotions/{c.promotion}").json()["state"] == "rolling_out"
    report(team.client, team.operator, c.deployment, restored["revision"], "stable", 1000, 10)
    report(team.client, team.operator, c.deployment, restored["revision"], "candidate", 300, 90)
    assert [d["action"] for d in tick(team, c.deployment)] == ["rollback"]
    assert status(team.client, c.deployment).json()["candidate"] is None


def test_a_plan_given_with_the_request(team: Team, fast_plans: None) -> None:
    """Plans come from registry/policies/rollout.yaml by name, or with the request itself."""
    from tests.factories.governance import create_deployment, decide, record_eval, request_promotion

    v1 = team.push()
    record_eval(team.client, team.dev, v1, 0.8)
    dep = create_deployment(team.client, team.operator, team.base, team.adapter_ref)
    first = request_promotion(team.client, team.dev, v1, dep).json()
    decide(team.client, team.approver, first["id"], "approve")
    v2 = team.push()
    record_eval(team.client, team.dev, v2, 0.9)
    spec = {
        "steps": [{"share": 1, "min_dwell_s": 60}, {"share": 100, "min_dwell_s": 60}],
        "analysis": [
            {"metric": "error_rate", "compare": "stable", "max_ratio": 2, "min_requests": 50},
            # The floor wants a cap that needs no stable baseline (test_promotion_plans.py).
            {"metric": "error_rate", "compare": "absolute", "max": 0.2, "min_requests": 50},
        ],
    }
    broken = request_promotion(
        team.client, team.dev, v2, dep, plan="tiny", plan_spec={**spec, "steps": []}
    )
    assert broken.status_code == 422
    assert broken.json()["error"] == "invalid_policy"
    unknown = request_promotion(team.client, team.dev, v2, dep, plan="no-such-plan")
    assert unknown.status_code == 400
    req = request_promotion(team.client, team.dev, v2, dep, plan="tiny", plan_spec=spec).json()
    assert req["plan"] == "tiny"
    decide(team.client, team.approver, req["id"], "approve")
    assert status(team.client, dep).json()["share_bp"] == 100
