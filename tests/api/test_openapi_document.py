"""The OpenAPI document says what the app does: one error model, the real 422 body, patterns
on path parameters, every status code declared; and the bugs the fuzz run found stay fixed.

(``tests/fuzz/test_schemathesis.py`` checks the whole document against a live server; these
are the targeted, fast checks.)
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import jsonschema_rs
import pytest
from fastapi.testclient import TestClient

from registry import refs
from tests.factories.catalog import create_namespace, unique
from tests.factories.governance import make_principal


@pytest.fixture
def document(client: TestClient) -> dict[str, Any]:
    doc: dict[str, Any] = client.get("/openapi.json").json()
    return doc


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "responses" in op
    ]


def assert_documented(doc: dict[str, Any], method: str, path: str, r: httpx.Response) -> None:
    """``r`` has a status the operation declares and a body valid against its schema."""
    responses = doc["paths"][path][method]["responses"]
    assert str(r.status_code) in responses, (r.status_code, sorted(responses))
    schema = responses[str(r.status_code)]["content"]["application/json"]["schema"]
    validator = jsonschema_rs.Draft202012Validator({**schema, "components": doc["components"]})
    assert validator.is_valid(r.json()), (schema, r.json())


def test_every_error_response_is_the_error_model(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert schemas["Error"]["required"] == ["error", "detail", "context"]
    for method, path, op in _operations(document):
        for status, response in op["responses"].items():
            if int(status) < 400 or path == "/readyz":
                continue
            text = str(response["content"]["application/json"]["schema"])
            assert "#/components/schemas/Error" in text or "RequestValidationError" in text, (
                method,
                path,
                status,
            )
            assert response["x-error-codes"], (method, path, status)


def test_authenticated_operations_declare_bearer_and_401(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for method, path, op in _operations(document):
        if path in ("/healthz", "/readyz"):
            assert op["security"] == []
            continue
        assert op["security"] == [{"bearer": []}], (method, path)
        assert "unauthenticated" in op["responses"]["401"]["x-error-codes"], (method, path)
        assert not any(p["name"].lower() == "authorization" for p in op.get("parameters", []))


def test_string_path_parameters_have_patterns(document: dict[str, Any]) -> None:
    for method, path, op in _operations(document):
        for p in op.get("parameters", []):
            schema = p["schema"]
            if p["in"] != "path" or schema.get("format") == "uuid":
                continue
            if p["name"] == "file_name":  # any stored name; a wrong one is a 404
                continue
            assert "pattern" in schema, (method, path, p["name"])


def test_documented_name_patterns_are_the_checked_ones() -> None:
    simple = re.compile(refs.SIMPLE_NAME_PATTERN)
    for value in ("a", "a.b", "a-b_c", "a" * 63):
        assert simple.fullmatch(value)
        assert refs.namespace_name(value) == value
    for value in ("", "a.", "a..b", ".a", "A", "a" * 64, "a/b", "a\n"):
        assert not simple.fullmatch(value), value
        with pytest.raises(Exception, match="invalid namespace name"):
            refs.namespace_name(value)


def test_request_validation_422_is_what_the_document_says(
    client: TestClient, document: dict[str, Any]
) -> None:
    r = client.post("/api/v1/namespaces", json={"description": "no name"})
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_request"
    assert r.json()["context"]["errors"][0]["loc"] == ["body", "name"]
    assert_documented(document, "post", "/api/v1/namespaces", r)


def test_service_invalid_request_has_the_same_shape(
    client: TestClient, document: dict[str, Any], gpt2_base: str
) -> None:
    """Raised by a service, not by FastAPI: still ``context.errors``."""
    ns = create_namespace(client)
    path = "/api/v1/adapters/{namespace}/{name}/versions"
    r = client.post(f"/api/v1/adapters/{ns}/a/versions", json={"base": gpt2_base})
    assert (r.status_code, r.json()["error"]) == (422, "invalid_request")
    assert r.json()["context"]["errors"][0]["loc"] == ["body"]
    assert_documented(document, "post", path, r)


def test_name_refusals_are_documented(client: TestClient, document: dict[str, Any]) -> None:
    r = client.get("/api/v1/adapters/Bad/x")
    assert (r.status_code, r.json()["error"]) == (400, "invalid_name")
    assert_documented(document, "get", "/api/v1/adapters/{namespace}/{name}", r)
    r = client.get(f"/api/v1/adapters/{create_namespace(client)}/x/versions/v0")
    assert (r.status_code, r.json()["error"]) == (400, "invalid_reference")
    assert_documented(document, "get", "/api/v1/adapters/{namespace}/{name}/versions/{selector}", r)
    r = client.get("/api/v1/tokens", params={"principal": ""})
    assert (r.status_code, r.json()["error"]) == (400, "invalid_name")
    assert_documented(document, "get", "/api/v1/tokens", r)


@pytest.mark.parametrize("value", ['""7""', "\u0661"])
def test_if_match_is_the_documented_pattern(
    client: TestClient, document: dict[str, Any], value: str
) -> None:
    """``"7"``, ``W/"7"`` or ``7`` in ASCII digits, as documented; the old parser stripped any
    number of quotes and took any Unicode digit ("\u0661" was revision 1)."""
    r = client.post(
        f"/api/v1/deployments/{unique('d')}/rollback",
        headers={"If-Match": value.encode()},
        json={},
    )
    assert (r.status_code, r.json()["error"]) == (400, "bad_request")
    assert_documented(document, "post", "/api/v1/deployments/{name}/rollback", r)


def test_405_lists_every_method_of_the_path(client: TestClient) -> None:
    """GET and POST of one path are two routes; the 405 used to name only the first's."""
    r = client.request("DELETE", "/api/v1/namespaces")
    assert (r.status_code, r.json()["error"]) == (405, "method_not_allowed")
    assert {m.strip() for m in r.headers["Allow"].split(",")} == {"GET", "POST"}


def test_empty_base_filter_is_refused_like_an_empty_tag(client: TestClient) -> None:
    for params in ({"base": ""}, {"tag": ""}):
        r = client.get("/api/v1/adapters", params=params)
        assert (r.status_code, r.json()["error"]) == (400, "invalid_name"), params


@pytest.mark.parametrize("value", ["0.5", "1700000000", "2026-11-25T10:00:00", "yesterday"])
def test_times_are_rfc3339_with_a_zone(client: TestClient, value: str) -> None:
    """pydantic alone reads "0.5" as seconds since 1970: the document says date-time."""
    r = client.get("/api/v1/audit/events", params={"since": value})
    assert (r.status_code, r.json()["error"]) == (422, "invalid_request")
    ok = client.get("/api/v1/audit/events", params={"since": "2026-11-25T10:00:00Z"})
    assert ok.status_code == 200


def test_ci_identity_is_printable_ascii(client: TestClient) -> None:
    body = {"name": unique("p"), "role": "viewer", "ci_identity": "d\u0430na"}  # Cyrillic a
    r = client.post("/api/v1/principals", json=body)
    assert (r.status_code, r.json()["error"]) == (400, "bad_request")
    who = make_principal(client, "viewer", ci_identity="  Dana-CI ")
    assert who.name
