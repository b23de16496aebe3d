"""Trusted publishers through the API: what is stored, shown, listed and audited."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories.catalog import create_namespace, unique


def test_publisher_rule_is_stored_shown_and_audited_as_given(client: TestClient) -> None:
    """Every field of the publisher's rule (non-default values) reaches the row, the API body
    and the ``publisher.add`` audit event."""
    ns = create_namespace(client)
    name = unique("pub")
    rule = {
        "issuer": "https://gitlab.example",
        "audience": "aud-x",
        "repository": "group/trainer",
        "repository_owner_id": "77",
        "workflow_ref": "gitlab.example/group/trainer//.gitlab-ci.yml",
        "ref": "refs/heads/release",
        "environment": "prod",
        "require_protected_ref": False,
    }
    body = {"name": name, "kind": "gitlab", **rule, "principal": unique("ci"), "namespaces": [ns]}
    r = client.post("/api/v1/publishers", json=body)
    assert r.status_code == 201, r.text
    shown = r.json()
    assert {k: shown[k] for k in rule} == rule
    assert (shown["name"], shown["kind"], shown["namespaces"]) == (name, "gitlab", [ns])
    listed = client.get("/api/v1/publishers", params={"limit": 500}).json()["items"]
    assert [p for p in listed if p["name"] == name] == [shown]
    events = client.get(
        "/api/v1/audit/events", params={"action": "publisher.add", "resource": f"publisher:{name}"}
    ).json()["items"]
    assert [e["after"] for e in events] == [
        {"name": name, "kind": "gitlab", **rule, "namespaces": [ns], "principal": body["principal"]}
    ]
