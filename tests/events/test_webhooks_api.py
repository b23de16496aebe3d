"""The webhooks API in process: refusals carry stable 4xx codes, never 500."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from tests.factories.catalog import create_namespace
from tests.factories.governance import make_principal

PUBLIC = "https://93.184.215.14/hook"  # an address literal: no DNS in the test


def _create(client: TestClient, **body: object) -> tuple[int, dict[str, object]]:
    payload = {"url": PUBLIC, "event_types": ["version.registered"], **body}
    r = client.post("/api/v1/webhooks", json=payload)
    return r.status_code, r.json()


class TestCreate:
    def test_create_returns_the_secret_once(self, client: TestClient) -> None:
        status, body = _create(client)
        assert status == 201, body
        assert str(body["secret"]).startswith("whsec_")
        shown = client.get(f"/api/v1/webhooks/{body['id']}").json()
        assert "secret" not in shown
        assert shown["enabled"] is True
        listed = client.get("/api/v1/webhooks").json()["items"]
        assert body["id"] in [w["id"] for w in listed]

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:8080/hook",
            "http://10.0.0.7/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/hook",
            "http://localhost:8080/hook",
            "http://2130706433/hook",
        ],
    )
    def test_non_public_targets_are_blocked(self, client: TestClient, url: str) -> None:
        status, body = _create(client, url=url)
        assert (status, body["error"]) == (400, "webhook_target_blocked"), body

    @pytest.mark.parametrize(
        "url",
        ["ftp://example.com/x", "http://user:pw@example.com/", "not a url", "//example.com/y"],
    )
    def test_bad_urls_are_refused(self, client: TestClient, url: str) -> None:
        status, body = _create(client, url=url)
        assert (status, body["error"]) == (400, "invalid_webhook_url"), body

    def test_unknown_event_type_is_refused(self, client: TestClient) -> None:
        status, body = _create(client, event_types=["version.registered", "nope.nope"])
        assert (status, body["error"]) == (400, "unknown_event_type"), body

    def test_a_viewer_may_not_subscribe(self, client: TestClient) -> None:
        ns = create_namespace(client)
        viewer = make_principal(client, "viewer", [ns])
        r = client.post(
            "/api/v1/webhooks",
            json={"url": PUBLIC, "event_types": ["version.registered"], "namespace": ns},
            headers=viewer.headers,
        )
        assert (r.status_code, r.json()["error"]) == (403, "policy_denied")

    def test_a_developer_subscribes_to_its_namespace_only(self, client: TestClient) -> None:
        ns = create_namespace(client)
        dev = make_principal(client, "developer", [ns])
        body = {"url": PUBLIC, "event_types": ["version.registered"]}
        r = client.post("/api/v1/webhooks", json={**body, "namespace": ns}, headers=dev.headers)
        assert r.status_code == 201, r.text
        r = client.post("/api/v1/webhooks", json=body, headers=dev.headers)
        assert (r.status_code, r.json()["error"]) == (403, "policy_denied")


class TestManage:
    def test_unknown_ids_are_not_found(self, client: TestClient) -> None:
        missing = uuid.uuid4()
        for method, path in [
            ("GET", f"/api/v1/webhooks/{missing}"),
            ("POST", f"/api/v1/webhooks/{missing}/disable"),
            ("POST", f"/api/v1/webhooks/{missing}/rotate-secret"),
            ("GET", f"/api/v1/webhooks/{missing}/deliveries"),
        ]:
            r = client.request(method, path, json={} if method == "POST" else None)
            assert (r.status_code, r.json()["error"]) == (404, "webhook_not_found"), path
        _, created = _create(client)
        r = client.post(f"/api/v1/webhooks/{created['id']}/deliveries/{missing}/redeliver")
        assert (r.status_code, r.json()["error"]) == (404, "webhook_delivery_not_found")

    def test_others_cannot_see_a_webhook(self, client: TestClient) -> None:
        _, created = _create(client)
        outsider = make_principal(client, "developer", [])
        r = client.get(f"/api/v1/webhooks/{created['id']}", headers=outsider.headers)
        assert (r.status_code, r.json()["error"]) == (404, "webhook_not_found")
        listed = client.get("/api/v1/webhooks", headers=outsider.headers).json()["items"]
        assert listed == []

    def test_disable_keeps_the_reason(self, client: TestClient) -> None:
        _, created = _create(client)
        r = client.post(f"/api/v1/webhooks/{created['id']}/disable", json={"reason": "moved"})
        assert r.status_code == 200, r.text
        assert (r.json()["enabled"], r.json()["disabled_reason"]) == (False, "moved")
