"""The bad path / URI / reference list (security.md §6) against every governance route that
takes a name, a reference or a URI: always a 4xx with a stable code, never 500, nothing stored."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from tests.catalog.test_namespaces import HOSTILE_NAMES
from tests.factories.catalog import all_pages, create_namespace, unique

HOSTILE_URIS = [
    "file:///etc/passwd",
    "/etc/passwd",
    "http://token.actions.githubusercontent.com",
    "https://a@evil.example",
    "https://issuer.example/#/../../etc",
    "https://issuer.example/?a=../..",
    "mlflow-artifacts://x",
    "s3://bucket/../x",
    "",
    "https://",
    "javascript:alert(1)",
]
HOSTILE_REFS = [*HOSTILE_NAMES, "ns/../x@v1", "ns/x@v0", "ns/x@v-1", "ns/x@sha256:zz", "ns/x@@v1"]

CODES = {"invalid_name", "invalid_request", "invalid_reference", "bad_request"}


def _refused(r_status: int, body: dict[str, object]) -> None:
    assert 400 <= r_status < 500, body
    assert body["error"] in CODES | {
        "namespace_not_found",
        "deployment_not_found",
        "principal_not_found",
        "adapter_not_found",
        "base_model_not_found",
    }, body


@pytest.mark.parametrize("name", [*(n for n in HOSTILE_NAMES if len(n) < 65), "a" * 129])
def test_principal_names(client: TestClient, name: str) -> None:
    r = client.post("/api/v1/principals", json={"name": name, "role": "viewer"})
    _refused(r.status_code, r.json())
    r = client.post("/api/v1/tokens", json={"principal": name})
    _refused(r.status_code, r.json())


@pytest.mark.parametrize("name", ["Bob", "bob ", " bob", "b\u043eb", "bob\u200b"])
def test_principal_look_alikes_are_refused(client: TestClient, name: str) -> None:
    """Case and Unicode tricks cannot mint a second 'bob'."""
    r = client.post("/api/v1/principals", json={"name": name, "role": "viewer"})
    assert r.status_code in (400, 422)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_deployment_names_and_refs(client: TestClient, name: str) -> None:
    ns = create_namespace(client)
    r = client.post(
        "/api/v1/deployments", json={"name": name, "base": "b@main", "adapter": f"{ns}/x"}
    )
    _refused(r.status_code, r.json())
    r = client.post(
        "/api/v1/deployments",
        json={"name": unique("d"), "base": f"{name}@main", "adapter": f"{ns}/x"},
    )
    _refused(r.status_code, r.json())
    if name not in ("", ".", ".."):  # URL normalisation turns those into the list route
        r = client.get(f"/api/v1/deployments/{quote(name, safe='')}")
        assert r.status_code in (400, 404, 422), r.text


@pytest.mark.parametrize("ref", HOSTILE_REFS)
def test_promotion_refs(client: TestClient, ref: str) -> None:
    r = client.post("/api/v1/promotions", json={"ref": ref, "deployment": unique("d")})
    _refused(r.status_code, r.json())


@pytest.mark.parametrize("value", ["..", "x", "00000000-0000-0000-0000-00000000000g", "%2e%2e"])
def test_promotion_ids(client: TestClient, value: str) -> None:
    r = client.post(f"/api/v1/promotions/{value}/approve")
    assert r.status_code in (404, 422)
    r = client.post(f"/api/v1/tokens/{value}/revoke")
    assert r.status_code in (404, 422)


@pytest.mark.parametrize("uri", HOSTILE_URIS)
def test_publisher_issuer_uris(client: TestClient, uri: str) -> None:
    ns = create_namespace(client)
    name = unique("pub")
    r = client.post(
        "/api/v1/publishers",
        json={
            "name": name,
            "issuer": uri,
            "audience": "a",
            "repository": "acme/x",
            "repository_owner_id": "1",
            "workflow_ref": "acme/x/.github/workflows/t.yml",
            "principal": unique("ci"),
            "namespaces": [ns],
        },
    )
    _refused(r.status_code, r.json())
    assert name not in str(all_pages(client, "/api/v1/publishers", limit=500))


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_publisher_and_membership_names(client: TestClient, name: str) -> None:
    r = client.post(
        "/api/v1/publishers",
        json={
            "name": name,
            "issuer": "https://token.actions.githubusercontent.com",
            "audience": "a",
            "repository": "acme/x",
            "repository_owner_id": "1",
            "workflow_ref": "acme/x/.github/workflows/t.yml",
            "principal": unique("ci"),
            "namespaces": [name or "x"],
        },
    )
    _refused(r.status_code, r.json())
    r = client.post(
        f"/api/v1/principals/{unique('p')}/namespaces", json={"namespaces": [name or "-"]}
    )
    _refused(r.status_code, r.json())


@pytest.mark.parametrize(
    "params",
    [
        {"since": "yesterday"},
        {"since": "2026-11-25T10:00:00"},  # no time zone
        {"limit": 0},
        {"limit": 100000},
        {"page_token": "not-a-token"},
        {"action": "x" * 400},
    ],
)
def test_audit_log_filters(client: TestClient, params: dict[str, object]) -> None:
    r = client.get("/api/v1/audit/events", params=params)
    assert r.status_code in (400, 422), r.text


def test_policy_apply_garbage_is_refused_and_changes_nothing(client: TestClient) -> None:
    before = client.get("/api/v1/policies").json()
    for body in (
        {"schema_text": "garbage", "policies_text": "permit(", "gates_text": ""},
        {
            "schema_text": before["schema_text"],
            "policies_text": "permit(principal, action, resource);",
            "gates_text": before["gates_text"],
        },
        {
            "schema_text": before["schema_text"],
            "policies_text": before["policies_text"],
            "gates_text": "defaults: [1, 2",
        },
        {
            "schema_text": before["schema_text"],
            "policies_text": before["policies_text"],
            "gates_text": "defaults: {approvals: -1}",
        },
    ):
        r = client.post("/api/v1/policies", json=body)
        assert r.status_code == 422, r.text
        assert r.json()["error"] == "invalid_policy"
    after = client.get("/api/v1/policies").json()
    assert after["version"] == before["version"]
    assert after["digest"] == before["digest"]
