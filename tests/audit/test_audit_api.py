"""The audit trail through the API: what each mutation records, refusals, request ids,
filters and pagination, verification and on-demand checkpoints."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories.catalog import create_namespace, unique
from tests.factories.governance import make_principal, record_eval
from tests.fixtures.governance import Team


def _events(client: TestClient, **params: object) -> list[dict[str, object]]:
    r = client.get("/api/v1/audit/events", params={"limit": 500, **params})
    assert r.status_code == 200, r.text
    items: list[dict[str, object]] = r.json()["items"]
    return items


def test_mutations_are_recorded_with_decision_and_request_id(team: Team) -> None:
    ref = team.push()
    r = record_eval(team.client, team.dev, ref, 0.5)
    assert r.status_code == 201
    request_id = "req-" + unique()
    tags = team.client.post(
        f"/api/v1/adapters/{team.namespace}/{team.adapter}/versions/v1/tags",
        json={"add": ["prod-candidate"], "remove": []},
        headers={**team.dev.headers, "X-Request-ID": request_id},
    )
    assert tags.status_code == 200
    assert tags.headers["X-Request-ID"] == request_id
    resource = f"adapter:{ref}"
    events = _events(team.client, resource=resource)
    actions = [e["action"] for e in events]
    assert actions == ["adapter.version.register", "evaluation.record", "adapter.version.tags"]
    register, _, tag_event = events
    assert register["actor"] == team.dev.name
    assert register["decision"] == {
        "allowed": True,
        "action": "register_version",
        "policies": ["developers-write"],
    }
    assert tag_event["request_id"] == request_id
    assert tag_event["before"] == {"tags": []}
    assert tag_event["after"] == {"tags": ["prod-candidate"]}
    # Registered with a plain API token: no CI identity on the version.
    shown = team.client.get(f"/api/v1/adapters/{ref.replace('@', '/versions/')}").json()
    assert shown["ci_identity"] is None


def test_refused_mutation_is_recorded_and_changes_nothing(team: Team) -> None:
    ref = team.push()
    r = team.client.post(
        f"/api/v1/adapters/{team.namespace}/{team.adapter}/versions/v1/archive",
        headers=team.dev.headers,
    )
    assert r.status_code == 403
    assert r.json()["context"]["policy"] == "default-deny"
    denied = _events(team.client, action="authz.denied", actor=team.dev.name)
    assert denied[-1]["decision"]["action"] == "archive"  # type: ignore[index]
    state = team.client.get(f"/api/v1/adapters/{ref.replace('@', '/versions/')}").json()["state"]
    assert state == "validated"
    # The operator may archive.
    ok = team.client.post(
        f"/api/v1/adapters/{team.namespace}/{team.adapter}/versions/v1/archive",
        headers=team.operator.headers,
    )
    assert ok.status_code == 200
    assert _events(team.client, resource=f"adapter:{ref}")[-1]["after"] == {"state": "archived"}


def test_log_filters_and_keyset_pages(client: TestClient) -> None:
    prefix = unique("aud")
    names = [create_namespace(client, f"{prefix}-{i}") for i in range(5)]
    seen: list[int] = []
    token = None
    while True:
        params: dict[str, object] = {
            "action": "namespace.create",
            "resource": f"namespace:{prefix}",
            "limit": 2,
        }
        if token:
            params["page_token"] = token
        body = client.get("/api/v1/audit/events", params=params).json()
        seen += [e["seq"] for e in body["items"]]
        token = body["next_page_token"]
        if token is None:
            break
    assert len(seen) == len(names)
    assert seen == sorted(seen)
    chained = client.get("/api/v1/audit/events", params={"limit": 500}).json()["items"]
    by_seq = {e["seq"]: e for e in chained}
    for e in chained:
        if e["seq"] - 1 in by_seq:
            assert e["prev_hash"] == by_seq[e["seq"] - 1]["hash"]


def test_only_auditors_and_admins_read_the_log(team: Team) -> None:
    assert team.client.get("/api/v1/audit/events", headers=team.dev.headers).status_code == 403
    auditor = make_principal(team.client, "auditor", [])
    assert team.client.get("/api/v1/audit/events", headers=auditor.headers).status_code == 200
    verified = team.client.get("/api/v1/audit/verify", headers=auditor.headers).json()
    assert verified["ok"] is True
    assert verified["events"] > 0


def test_checkpoint_on_demand_then_verify_counts_it(client: TestClient) -> None:
    create_namespace(client)
    made = client.post("/api/v1/audit/checkpoints")
    assert made.status_code == 201
    cp = made.json()
    assert cp is not None
    assert len(cp["hash"]) == 64
    verified = client.get("/api/v1/audit/verify").json()
    assert verified["ok"] is True
    assert verified["checkpoints"] >= 1
    assert verified["events"] >= cp["seq"]


def test_promotion_request_event_carries_the_request_decision(team: Team) -> None:
    """A read made along the way (the version) does not replace the deciding decision."""
    from tests.factories.governance import create_deployment, request_promotion

    ref = team.push()
    dep = create_deployment(team.client, team.operator, team.base, team.adapter_ref)
    r = request_promotion(team.client, team.dev, ref, dep)
    assert r.status_code == 201
    event = _events(team.client, resource=f"promotion:{r.json()['id']}")[0]
    assert event["action"] == "promotion.request"
    assert event["decision"]["action"] == "request_promotion"  # type: ignore[index]
    assert event["decision"]["policies"] == ["developers-write"]  # type: ignore[index]
