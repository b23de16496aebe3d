"""A principal's lifecycle through the HTTP API: disable / enable (tokens refused at once, on
every replica, and restored), role changes, removal of memberships, the last enabled admin kept,
each audited once, idempotent, and refused to non-admins and bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from registry.app import create_app
from registry.auth.tokens import hash_token
from registry.db import migrate
from tests.factories.catalog import create_namespace, unique
from tests.factories.governance import auth, make_principal
from tests.fixtures.app import bootstrap, make_settings
from tests.fixtures.db import drop_database, new_database_url


def _events(client: TestClient, action: str, name: str) -> list[dict[str, Any]]:
    r = client.get(
        "/api/v1/audit/events",
        params={"action": action, "resource": f"principal:{name}", "limit": 500},
    )
    assert r.status_code == 200, r.text
    return [
        e
        for e in r.json()["items"]
        if e["resource"] == f"principal:{name}" and e["action"] == action
    ]


def test_disabled_principal_is_refused_at_once_and_enable_restores(client: TestClient) -> None:
    ns = create_namespace(client)
    dev = make_principal(client, "developer", [ns])
    second = client.post("/api/v1/tokens", json={"name": "two"}, headers=dev.headers).json()
    assert client.get("/api/v1/namespaces", headers=dev.headers).status_code == 200
    # The token is in this replica's cache now: disabling must not wait for it to expire.
    assert client.app.state.token_cache.get(hash_token(dev.token)) is not None  # type: ignore[attr-defined]

    r = client.post(f"/api/v1/principals/{dev.name}/disable")
    assert r.status_code == 200, r.text
    assert r.json()["disabled"] is True
    for token in (dev.token, second["token"]):
        refused = client.get("/api/v1/namespaces", headers=auth(token))
        assert refused.status_code == 401
        assert refused.json()["error"] == "unauthenticated"
    again = client.post(f"/api/v1/principals/{dev.name}/disable")
    assert again.status_code == 200
    assert again.json()["disabled"] is True
    assert len(_events(client, "principal.disable", dev.name)) == 1  # idempotent: one event

    r = client.post(f"/api/v1/principals/{dev.name}/enable")
    assert r.status_code == 200
    assert r.json()["disabled"] is False
    assert client.get("/api/v1/namespaces", headers=dev.headers).status_code == 200
    assert client.get("/api/v1/namespaces", headers=auth(second["token"])).status_code == 200
    assert client.post(f"/api/v1/principals/{dev.name}/enable").status_code == 200
    [event] = _events(client, "principal.enable", dev.name)
    assert (event["before"], event["after"]) == ({"disabled": True}, {"disabled": False})
    assert event["decision"]["action"] == "manage_principals"


def test_only_admins_change_principals_and_bad_input_is_refused(client: TestClient) -> None:
    ns = create_namespace(client)
    dev = make_principal(client, "developer", [ns])
    victim = make_principal(client, "viewer", [ns])
    for path, body in [
        ("disable", None),
        ("enable", None),
        ("role", {"role": "admin"}),
        ("namespaces/remove", {"namespaces": [ns]}),
    ]:
        r = client.post(f"/api/v1/principals/{victim.name}/{path}", json=body, headers=dev.headers)
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error"] == "policy_denied"
    assert client.get("/api/v1/namespaces", headers=victim.headers).status_code == 200
    assert client.post(f"/api/v1/principals/{dev.name}/role", json={"role": "admin"}).json()[
        "role"
    ] == ("admin")
    missing = unique("nobody")
    for path in ("disable", "enable"):
        r = client.post(f"/api/v1/principals/{missing}/{path}")
        assert (r.status_code, r.json()["error"]) == (404, "principal_not_found")
    bad_name = client.post("/api/v1/principals/Bad..Name!/disable")
    assert bad_name.status_code == 400
    bad_role = client.post(f"/api/v1/principals/{victim.name}/role", json={"role": "root"})
    assert bad_role.status_code == 422
    extra = client.post(
        f"/api/v1/principals/{victim.name}/role", json={"role": "viewer", "sudo": True}
    )
    assert extra.status_code == 422
    empty = client.post(f"/api/v1/principals/{victim.name}/namespaces/remove", json={})
    assert empty.status_code == 422
    unknown_ns = client.post(
        f"/api/v1/principals/{victim.name}/namespaces/remove",
        json={"namespaces": ["nope-" + unique()]},
    )
    assert (unknown_ns.status_code, unknown_ns.json()["error"]) == (404, "namespace_not_found")
    after = {
        p["name"]: p
        for p in client.get("/api/v1/principals", params={"limit": 500}).json()["items"]
    }
    assert after[victim.name]["role"] == "viewer"
    assert after[victim.name]["namespaces"] == [ns]
    assert after[victim.name]["disabled"] is False


def test_role_change_applies_on_the_next_request(client: TestClient) -> None:
    ns = create_namespace(client)
    who = make_principal(client, "viewer", [ns])
    body = {"name": unique("d"), "base": "x@main", "adapter": f"{ns}/bot"}
    refused = client.post("/api/v1/deployments", json=body, headers=who.headers)
    assert refused.status_code == 403
    r = client.post(f"/api/v1/principals/{who.name}/role", json={"role": "operator"})
    assert r.status_code == 200
    assert r.json()["role"] == "operator"
    allowed_now = client.post("/api/v1/deployments", json=body, headers=who.headers)
    assert allowed_now.status_code != 403  # past authorization (the base does not exist)
    assert client.post(f"/api/v1/principals/{who.name}/role", json={"role": "operator"}).json()[
        "role"
    ] == ("operator")
    [event] = _events(client, "principal.role", who.name)
    assert (event["before"], event["after"]) == ({"role": "viewer"}, {"role": "operator"})


def test_removed_membership_applies_on_the_next_request(client: TestClient) -> None:
    ns, other = create_namespace(client), create_namespace(client)
    who = make_principal(client, "viewer", [ns, other])

    def visible() -> set[str]:
        r = client.get("/api/v1/namespaces", params={"limit": 500}, headers=who.headers)
        return {n["name"] for n in r.json()["items"]}

    assert {ns, other} <= visible()
    r = client.post(f"/api/v1/principals/{who.name}/namespaces/remove", json={"namespaces": [ns]})
    assert r.status_code == 200, r.text
    assert r.json()["namespaces"] == [other]
    assert ns not in visible()
    assert other in visible()
    again = client.post(
        f"/api/v1/principals/{who.name}/namespaces/remove", json={"namespaces": [ns]}
    )
    assert again.json()["namespaces"] == [other]
    [event] = _events(client, "principal.revoke", who.name)
    assert event["before"] == {"namespaces": sorted([ns, other])}
    assert event["after"] == {"namespaces": [other]}


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    """An app over a database of its own whose only admin is ``root`` (and its token)."""
    url = new_database_url(tmp_path, "registry_admins")
    try:
        migrate.upgrade(url)
        token = bootstrap(url, "root")
        settings = make_settings(url, tmp_path / "artifacts")
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            client.headers["Authorization"] = f"Bearer {token}"
            yield client, token
    finally:
        drop_database(url)


def test_the_last_enabled_admin_is_kept(fresh: tuple[TestClient, str]) -> None:
    client, _ = fresh
    for path, body in [("disable", None), ("role", {"role": "viewer"})]:
        r = client.post(f"/api/v1/principals/root/{path}", json=body)
        assert r.status_code == 409, r.text
        assert r.json()["error"] == "last_admin"
        assert r.json()["context"] == {"principal": "root"}
    second = make_principal(client, "admin")
    r = client.post("/api/v1/principals/root/disable", headers=second.headers)
    assert r.status_code == 200  # another enabled admin exists
    # root is disabled: second is the last enabled admin now, whoever asks.
    for path, body in [("disable", None), ("role", {"role": "viewer"})]:
        r = client.post(
            f"/api/v1/principals/{second.name}/{path}", json=body, headers=second.headers
        )
        assert (r.status_code, r.json()["error"]) == (409, "last_admin")
    # A disabled admin may lose its role: it leaves no enabled admin fewer.
    r = client.post(
        "/api/v1/principals/root/role", json={"role": "auditor"}, headers=second.headers
    )
    assert r.status_code == 200
    assert client.post("/api/v1/principals/root/enable", headers=second.headers).status_code == 200
    principals = client.get("/api/v1/principals", headers=second.headers).json()["items"]
    assert {(p["name"], p["role"], p["disabled"]) for p in principals} == {
        ("root", "auditor", False),
        (second.name, "admin", False),
    }


def test_other_replicas_drop_cached_callers_on_an_access_change(
    fresh: tuple[TestClient, str], tmp_path: Path
) -> None:
    """A second app over the same database is a second replica: its token cache skips the
    database, so a disable must reach it through the routing epoch (NOTIFY on PostgreSQL, the
    poll elsewhere; ``sync`` is one poll, run here instead of waiting for the thread)."""
    client, _ = fresh
    who = make_principal(client, "viewer")
    url = client.app.state.settings.database.url  # type: ignore[attr-defined]
    other_settings = make_settings(url, tmp_path / "artifacts-b")
    with TestClient(create_app(other_settings), raise_server_exceptions=False) as replica:
        assert replica.get("/api/v1/namespaces", headers=who.headers).status_code == 200
        cache = replica.app.state.token_cache  # type: ignore[attr-defined]
        assert cache.get(hash_token(who.token)) is not None
        assert client.post(f"/api/v1/principals/{who.name}/disable").status_code == 200
        replica.app.state.routing.sync()  # type: ignore[attr-defined]
        assert cache.get(hash_token(who.token)) is None
        refused = replica.get("/api/v1/namespaces", headers=who.headers)
        assert (refused.status_code, refused.json()["error"]) == (401, "unauthenticated")
