"""Namespaces: create, list with keyset pagination, hostile names."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.factories.catalog import create_namespace, unique

HOSTILE_NAMES = [
    "../x",
    "..",
    ".",
    "x/../y",
    "%2e%2e%2f",
    "%252e%252e%252f",
    "a\x00b",
    "a b",
    "UPPER",
    "x;/../y",
    "x#/../y",
    "x?/../y",
    "\u2024\u2024",
    "\uff0e\uff0e\uff0f",
    "a" * 65,
    "",
    "-x",
    "x.",
    "a..b",
    "C:\\x",
    "/etc/passwd",
    "..\\x",
]


class TestCreateNamespace:
    def test_create_then_duplicate_is_conflict(self, client: TestClient) -> None:
        name = create_namespace(client)
        r = client.post("/api/v1/namespaces", json={"name": name})
        assert r.status_code == 409
        assert r.json()["error"] == "namespace_exists"

    @pytest.mark.parametrize("name", HOSTILE_NAMES)
    def test_hostile_name_is_refused(self, client: TestClient, name: str) -> None:
        r = client.post("/api/v1/namespaces", json={"name": name})
        assert r.status_code in (400, 422), r.text
        assert r.json()["error"] in ("invalid_name", "invalid_request")

    def test_unknown_field_is_refused(self, client: TestClient) -> None:
        r = client.post("/api/v1/namespaces", json={"name": unique("ns"), "owner": "x"})
        assert r.status_code == 422
        assert r.json()["error"] == "invalid_request"

    def test_malformed_json_is_refused(self, client: TestClient) -> None:
        r = client.post(
            "/api/v1/namespaces", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 422
        assert r.json()["error"] == "invalid_request"


class TestListNamespaces:
    def test_pages_cover_every_namespace_once(self, client: TestClient) -> None:
        prefix = unique("pg")
        names = {create_namespace(client, f"{prefix}-{i}") for i in range(5)}
        seen: list[str] = []
        token = None
        while True:
            params: dict[str, str | int] = {"limit": 2}
            if token:
                params["page_token"] = token
            body = client.get("/api/v1/namespaces", params=params).json()
            assert len(body["items"]) <= 2
            seen += [n["name"] for n in body["items"]]
            token = body["next_page_token"]
            if token is None:
                break
        assert names <= set(seen)
        assert len(seen) == len(set(seen))
        assert seen == sorted(seen)

    @pytest.mark.parametrize("token", ["!!!", "eyJ4IjoxfQ", "W10", "W3t9XQ", "x" * 600])
    def test_bad_page_token_is_refused(self, client: TestClient, token: str) -> None:
        r = client.get("/api/v1/namespaces", params={"page_token": token})
        assert r.status_code in (400, 422)
        assert r.json()["error"] in ("invalid_page_token", "invalid_request")
