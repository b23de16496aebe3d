"""Every shared peft fixture gives exactly its MANIFEST.json outcome through ``push``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories.catalog import create_namespace, error_of, push, register_base, unique
from tests.fixtures.peft import base_fixture, fixtures, path_of

ADAPTERS = fixtures("adapter")


@pytest.fixture(scope="module")
def bases(client: TestClient) -> dict[str, str]:
    """Each fixture base registered once: fixture id → ``NAME@REV``."""
    return {
        b["id"]: register_base(client, path_of(b), name=unique(b["id"])) for b in fixtures("base")
    }


@pytest.fixture(scope="module")
def client(anon_client: TestClient, admin_token: str) -> Iterator[TestClient]:
    # anon_client is the worker's shared unauthenticated client: its credentials go afterwards
    # (tests/api/test_auth.py, run later on the same worker, expects none).
    anon_client.headers["Authorization"] = f"Bearer {admin_token}"
    try:
        yield anon_client
    finally:
        anon_client.headers.pop("Authorization", None)


@pytest.mark.parametrize("entry", ADAPTERS, ids=[a["id"] for a in ADAPTERS])
def test_push_gives_manifest_outcome(
    client: TestClient, bases: dict[str, str], entry: dict[str, Any]
) -> None:
    ns = create_namespace(client)
    base = bases[base_fixture(entry["base"])["id"]]
    r = push(client, ns, "adapter", path_of(entry), base)
    if entry["expected"] == "valid":
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["version"] == 1
        assert body["state"] == "validated"
        assert body["peft_type"] == entry["peft_type"]
        assert body["digest"].startswith("sha256:")
        assert body["trainable_params"] == entry["parameter_count"]
    else:
        assert 400 <= r.status_code < 500, r.text
        assert error_of(r) == (entry["expected_error"], entry["error_detail"])
        # A rejected push leaves no adapter, no version.
        assert client.get(f"/api/v1/adapters/{ns}/adapter").status_code == 404
