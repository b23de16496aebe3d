"""Principals, memberships and tokens: who may create them, scopes, expiry, revocation, and
changes of role or membership taking effect on the next request."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text

from registry.db.engine import make_engine
from registry.settings import DatabaseSettings
from tests.factories.catalog import create_namespace, unique
from tests.factories.governance import auth, make_principal


def test_only_admins_create_principals(client: TestClient) -> None:
    ns = create_namespace(client)
    dev = make_principal(client, "developer", [ns])
    r = client.post(
        "/api/v1/principals", json={"name": unique("p"), "role": "admin"}, headers=dev.headers
    )
    assert r.status_code == 403
    assert r.json()["error"] == "policy_denied"
    dup = client.post("/api/v1/principals", json={"name": dev.name, "role": "viewer"})
    assert dup.status_code == 409
    missing = client.post(
        "/api/v1/principals",
        json={"name": unique("p"), "role": "viewer", "namespaces": ["nope-" + unique()]},
    )
    assert missing.status_code == 404


def test_self_service_tokens_but_not_for_others(client: TestClient) -> None:
    ns = create_namespace(client)
    a = make_principal(client, "developer", [ns])
    b = make_principal(client, "developer", [ns])
    mine = client.post("/api/v1/tokens", json={"name": "laptop"}, headers=a.headers)
    assert mine.status_code == 201
    assert mine.json()["principal"] == a.name
    theirs = client.post("/api/v1/tokens", json={"principal": b.name}, headers=a.headers)
    assert theirs.status_code == 404  # may not even see b
    listed = client.get("/api/v1/tokens", headers=a.headers).json()["items"]
    assert {t["name"] for t in listed} >= {"laptop"}
    assert all("token" not in t for t in listed)


def test_scoped_token_is_limited_to_its_actions(client: TestClient) -> None:
    ns = create_namespace(client)
    dev = make_principal(client, "developer", [ns])
    scoped = client.post("/api/v1/tokens", json={"scopes": ["read"]}, headers=dev.headers).json()[
        "token"
    ]
    assert client.get("/api/v1/namespaces", headers=auth(scoped)).status_code == 200
    r = client.post(
        f"/api/v1/adapters/{ns}/x/versions/v1/evaluations",
        json={"suite": "s", "metric": "m", "value": 1.0},
        headers=auth(scoped),
    )
    assert r.status_code in (403, 404)
    r = client.post("/api/v1/uploads", json={}, headers=auth(scoped))
    assert r.status_code == 403
    assert r.json()["context"]["policy"] == "token-scope"
    bad = client.post("/api/v1/tokens", json={"scopes": ["sudo"]}, headers=dev.headers)
    assert bad.status_code == 400


def test_revoked_and_expired_tokens_stop_working(client: TestClient, database_url: str) -> None:
    dev = make_principal(client, "developer", [])
    made = client.post("/api/v1/tokens", json={"name": "short"}, headers=dev.headers).json()
    assert client.get("/api/v1/namespaces", headers=auth(made["token"])).status_code == 200
    r = client.post(f"/api/v1/tokens/{made['id']}/revoke", headers=dev.headers)
    assert r.status_code == 200
    assert r.json()["revoked_at"] is not None
    assert client.get("/api/v1/namespaces", headers=auth(made["token"])).status_code == 401
    other = client.post("/api/v1/tokens", json={"name": "old"}, headers=dev.headers).json()
    engine = make_engine(DatabaseSettings(url=database_url))
    try:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE api_tokens SET expires_at = :t WHERE name = 'old'"),
                {"t": "2001-01-01 00:00:00+00:00"},
            )
    finally:
        engine.dispose()
    client.app.state.token_cache.clear()  # type: ignore[attr-defined]
    assert client.get("/api/v1/namespaces", headers=auth(other["token"])).status_code == 401


def test_membership_and_role_changes_apply_on_the_next_request(
    client: TestClient, database_url: str
) -> None:
    ns = create_namespace(client)
    viewer = make_principal(client, "viewer", [])
    assert client.get("/api/v1/namespaces", headers=viewer.headers).status_code == 200

    def names() -> list[str]:
        return [
            n["name"]
            for n in client.get(
                "/api/v1/namespaces", params={"limit": 500}, headers=viewer.headers
            ).json()["items"]
        ]

    assert ns not in names()
    assert (
        client.post(
            f"/api/v1/principals/{viewer.name}/namespaces", json={"namespaces": [ns]}
        ).status_code
        == 200
    )
    assert ns in names()  # no stale cache: the very next request sees the membership
    engine = make_engine(DatabaseSettings(url=database_url))
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "DELETE FROM principal_namespaces WHERE principal_id = "
                    "(SELECT id FROM principals WHERE name = :n)"
                ),
                {"n": viewer.name},
            )
    finally:
        engine.dispose()
    assert ns not in names()
