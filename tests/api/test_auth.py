"""Authentication: every route but health refuses anonymous and wrong-token callers."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from registry.api.routes_index import all_routes
from registry.app import create_app

PUBLIC = {"/healthz", "/readyz"}
# The web console's public pages: sign-in (form and post, and single sign-on's start and
# callback: 401 oidc_sign_in_failed when it is not configured), its stylesheet, the root redirect.
CONSOLE_PUBLIC = {
    "/console",
    "/console/sign-in",
    "/console/oidc/start",
    "/console/oidc/callback",
    "/console/static/{name}",
    "/console/swagger/{name}",
    "/docs",
    "/redoc",
}
SAMPLE = {
    "namespace": "acme",
    "name": "bot",
    "selector": "v1",
    "file_name": "adapter_config.json",
    "upload_id": "00000000-0000-0000-0000-000000000000",
    "revision": "main",
}


def _concrete(path: str) -> str:
    def fill(m: re.Match[str]) -> str:
        key = m.group(1).split(":")[0]
        return SAMPLE.get(key, "x")

    return re.sub(r"\{([^}]+)\}", fill, path)


def _routes() -> list[tuple[str, str]]:
    out = []
    for route in all_routes(create_app()):
        for method in sorted(route.methods - {"HEAD"}):
            out.append((method, route.path))
    return out


ROUTES = _routes()


def test_route_list_is_not_empty() -> None:
    paths = {p for _, p in ROUTES}
    assert "/api/v1/adapters/{namespace}/{name}/versions" in paths
    assert paths >= PUBLIC


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_route_refuses_anonymous_caller(anon_client: TestClient, method: str, path: str) -> None:
    r = anon_client.request(method, _concrete(path), json={}, follow_redirects=False)
    if path in PUBLIC:
        assert r.status_code in (200, 503)
        return
    if path in CONSOLE_PUBLIC:
        assert r.status_code in (200, 303, 401, 404), r.text  # 401: sign-in with no token
        return
    if path.startswith("/console") and method == "GET":  # pages: to sign-in, with no session
        assert r.status_code == 303, r.text  # a page without a session: to sign-in
        assert r.headers["location"].startswith("/console/sign-in?next=")
        return
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "unauthenticated"
    assert r.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer ar_" + "A" * 43,  # well-formed, unknown
        "Bearer nonsense",
        "Basic YWRtaW46YWRtaW4=",
        "Bearer ",
        "ar_" + "A" * 43,
        "Bearer ar_" + "A" * 42 + "\u00e9",
    ],
)
def test_wrong_token_is_unauthenticated(anon_client: TestClient, header: str) -> None:
    # Latin-1 on the wire: HTTP header bytes outside ASCII must not reach a 500.
    r = anon_client.get("/api/v1/namespaces", headers={"Authorization": header.encode("latin-1")})
    assert r.status_code == 401
    assert r.json()["error"] == "unauthenticated"


def test_valid_token_is_accepted(client: TestClient) -> None:
    assert client.get("/api/v1/namespaces").status_code == 200


def test_openapi_lists_error_codes(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    post = doc["paths"]["/api/v1/adapters/{namespace}/{name}/versions"]["post"]
    described = " ".join(r.get("description", "") for r in post["responses"].values())
    for code in ("corrupt_safetensors", "incompatible_base", "version_exists", "unauthenticated"):
        assert f"`{code}`" in described


def test_readyz_reports_database_and_storage(anon_client: TestClient) -> None:
    r = anon_client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "checks": {"database": "ok", "storage": "ok"}}
