"""Policy sets are versioned: applying one validates it, records it, audits both digests and
takes effect on the next request."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.factories.catalog import create_namespace
from tests.factories.governance import make_principal


def _apply(client: TestClient, policies_text: str, base: dict[str, str]) -> dict[str, object]:
    r = client.post(
        "/api/v1/policies",
        json={
            "schema_text": base["schema_text"],
            "policies_text": policies_text,
            "gates_text": base["gates_text"],
            "rollout_text": base["rollout_text"],
            "source": "test",
        },
    )
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body


def test_apply_takes_effect_on_the_next_request_and_is_audited(client: TestClient) -> None:
    ns = create_namespace(client)
    dev = make_principal(client, "developer", [ns])
    original = client.get("/api/v1/policies").json()
    tag_url = f"/api/v1/adapters/{ns}/nothing/versions/v1/tags"
    # Before: the developer may edit metadata here (404: there is no such adapter yet).
    assert client.post(tag_url, json={"add": ["x"]}, headers=dev.headers).status_code == 404
    without_writes = re.sub(
        r'@id\("developers-write"\).*?;\n', "", original["policies_text"], flags=re.S
    )
    assert without_writes != original["policies_text"]
    applied = _apply(client, without_writes, original)
    try:
        assert applied["version"] == original["version"] + 1
        assert applied["digest"] != original["digest"]
        refused = client.post(tag_url, json={"add": ["x"]}, headers=dev.headers)
        assert refused.status_code == 403
        assert refused.json()["context"]["policy"] == "default-deny"
        event = client.get("/api/v1/audit/events", params={"action": "policy.apply"}).json()[
            "items"
        ][-1]
        assert event["before"]["digest"] == original["digest"]
        assert event["after"]["digest"] == applied["digest"]
        # Only admins apply policies.
        r = client.post(
            "/api/v1/policies",
            json={
                "schema_text": original["schema_text"],
                "policies_text": original["policies_text"],
                "gates_text": original["gates_text"],
            },
            headers=dev.headers,
        )
        assert r.status_code == 403
    finally:
        restored = _apply(client, original["policies_text"], original)
    assert restored["digest"] == original["digest"]
    assert client.post(tag_url, json={"add": ["x"]}, headers=dev.headers).status_code == 404
