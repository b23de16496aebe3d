"""The serving routes' shortcuts give the same answers as the general machinery: the direct
``key=`` query read equals Starlette's parser on any query string, the Prometheus child cache
counts what ``labels()`` would, the fast-path middleware takes exactly the two serving GETs and
answers errors through the app's handlers, and the routes stay in the OpenAPI schema with their
parameters."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from registry.api.fast_path import _match
from registry.api.routes.serving import _key
from registry.metrics import Metrics

_QUERY_BYTES = st.binary(max_size=40) | st.builds(
    lambda a, b: b"key=" + a + b,
    st.binary(max_size=20),
    st.sampled_from([b"", b"&key=z", b"%41", b"+", b";x=1", b"&other=1", b"\xc3\xa9"]),
)


def _request(query: bytes) -> Request:
    return Request({"type": "http", "query_string": query, "headers": []})


@given(_QUERY_BYTES)
@settings(max_examples=500, deadline=None)
def test_direct_key_read_equals_starlettes_parser(query: bytes) -> None:
    assert _key(_request(query)) == _request(query).query_params.get("key")


def test_examples() -> None:
    assert _key(_request(b"key=tenant-42")) == "tenant-42"
    assert _key(_request(b"key=a%20b")) == "a b"
    assert _key(_request(b"key=a&key=b")) == "b"
    assert _key(_request(b"other=1")) is None


def test_cached_children_count_like_labels() -> None:
    metrics = Metrics()
    for _ in range(3):
        metrics.resolved("chat", "stable")
    metrics.resolved("chat", "candidate")
    assert metrics.resolves.labels(deployment="chat", arm="stable")._value.get() == 3
    assert metrics.resolves.labels(deployment="chat", arm="candidate")._value.get() == 1
    assert b'registry_resolves_total{arm="stable",deployment="chat"} 3.0' in metrics.render()


def test_the_routes_are_documented(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    resolve = paths["/api/v1/deployments/{name}/resolve"]["get"]
    assert {(p["name"], p["in"]) for p in resolve["parameters"]} == {
        ("name", "path"),
        ("key", "query"),
    }
    assert "404" in resolve["responses"]
    table = paths["/api/v1/deployments/{name}/routing-table"]["get"]
    assert [(p["name"], p["in"]) for p in table["parameters"]] == [("name", "path")]


def test_other_methods_are_refused_with_the_usual_error(client: TestClient) -> None:
    r = client.post("/api/v1/deployments/chat/resolve?key=k")
    assert r.status_code == 405
    assert r.json()["error"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("method", "path", "root_path", "expected"),
    [
        ("GET", "/api/v1/deployments/chat/resolve", "", ("resolve", "chat")),
        ("GET", "/api/v1/deployments/chat/routing-table", "", ("routing_table", "chat")),
        ("GET", "/proxy/api/v1/deployments/chat/resolve", "/proxy", ("resolve", "chat")),
        ("GET", "/api/v1/deployments/chat/resolve/", "", None),
        ("GET", "/api/v1/deployments/chat/x/resolve", "", None),
        ("GET", "/api/v1/deployments//resolve", "", None),
        ("GET", "/api/v1/deployments/chat", "", None),
        ("GET", "/api/v1/deployments/chat/history", "", None),
        ("HEAD", "/api/v1/deployments/chat/resolve", "", None),
        ("POST", "/api/v1/deployments/chat/resolve", "", None),
    ],
)
def test_only_the_two_serving_paths_take_the_shortcut(
    method: str, path: str, root_path: str, expected: tuple[str, str] | None
) -> None:
    scope: dict[str, Any] = {"type": "http", "method": method, "path": path}
    if root_path:
        scope["root_path"] = root_path
    endpoint = _match(scope)
    if expected is None:
        assert endpoint is None
        assert "path_params" not in scope
    else:
        assert endpoint is not None
        assert (endpoint.__name__, scope["path_params"]["name"]) == expected


def test_errors_on_the_shortcut_use_the_app_handlers(client: TestClient) -> None:
    r = client.get("/api/v1/deployments/no-such-deployment/resolve?key=k")
    assert r.status_code == 404
    assert r.json()["error"] == "deployment_not_found"
    assert r.headers["X-Request-ID"]  # still inside the request-id middleware
    r = client.get("/api/v1/deployments/chat/resolve?key=k", headers={"Authorization": "Basic x"})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"
    r = client.get("/api/v1/deployments/Not A Name!/resolve?key=k")
    assert r.status_code in (400, 404)
    assert set(r.json()) == {"error", "detail", "context"}
    # HEAD is not on the shortcut; the router still answers it.
    assert client.head("/api/v1/deployments/no-such-deployment/resolve?key=k").status_code == 404
