"""``Idempotency-Key`` on POST routes (real HTTP app): the same key and body replay the first
answer, the same key with another body is refused, a malformed key is a bad request."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.factories.catalog import open_upload, put_file, unique

Variant = Callable[[int], Path]


class TestIdempotency:
    def test_same_key_same_body_replays(
        self, client: TestClient, namespace: str, gpt2_base: str, adapter_variant: Variant
    ) -> None:
        upload_id = open_upload(client)
        for p in adapter_variant(3).iterdir():
            assert put_file(client, upload_id, p.name, p.read_bytes()).status_code == 201
        body = {"base": gpt2_base, "upload_id": upload_id}
        headers = {"Idempotency-Key": unique("key")}
        first = client.post(
            f"/api/v1/adapters/{namespace}/bot/versions", json=body, headers=headers
        )
        second = client.post(
            f"/api/v1/adapters/{namespace}/bot/versions", json=body, headers=headers
        )
        assert first.status_code == second.status_code == 201
        assert first.json() == second.json()
        assert second.headers.get("Idempotent-Replayed") == "true"
        assert client.get(f"/api/v1/adapters/{namespace}/bot").json()["latest_version"] == 1

    def test_same_key_different_body_is_422(self, client: TestClient) -> None:
        headers = {"Idempotency-Key": unique("key")}
        assert (
            client.post(
                "/api/v1/namespaces", json={"name": unique("ns")}, headers=headers
            ).status_code
            == 201
        )
        r = client.post("/api/v1/namespaces", json={"name": unique("ns")}, headers=headers)
        assert r.status_code == 422
        assert r.json()["error"] == "idempotency_key_reused"

    @pytest.mark.parametrize("key", ["", "a" * 256, "spa ce", "ü"])
    def test_malformed_key_is_refused(self, client: TestClient, key: str) -> None:
        r = client.post(
            "/api/v1/namespaces",
            json={"name": unique("ns")},
            headers={"Idempotency-Key": key.encode("latin-1")},
        )
        assert r.status_code == 400
        assert r.json()["error"] == "bad_request"
