"""The OpenAPI document, made true to what the app sends.

* One error model: every 4xx/5xx body is ``{"error", "detail", "context"}`` (``Error``); each
  response lists the codes it can carry (``error`` enum, ``x-error-codes``).
* The request-validation 422 is the body ``api/errors.py`` renders (``RequestValidationError``:
  ``invalid_request`` with ``context.errors``), not FastAPI's ``HTTPValidationError``.
* Codes every operation of a kind can answer are added here, from the operation's shape, so
  no route can forget them: ``401`` and the OIDC ``503`` where a bearer token is required,
  ``503 unavailable`` (database busy) wherever the database is used, ``409 conflict`` (the
  integrity fallback) on writes, the ``Idempotency-Key`` codes where that header is accepted,
  ``400 bad_request`` where a JSON body is parsed, ``404 not_found`` where a path can fail to
  match any route. Route-specific codes come from ``responses()`` (``routes/_common.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from registry.schemas import REFUSED_WITH

BEARER_SCHEME = "bearer"
ERROR_CODES_KEY = "x-error-codes"
_ERROR = "Error"
_VALIDATION = "RequestValidationError"
_REF = "#/components/schemas/"
_INVALID_REQUEST = "invalid_request"
_WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
_UNPROTECTED = frozenset({"/healthz", "/readyz"})

_ERROR_SCHEMA: dict[str, Any] = {
    "title": _ERROR,
    "type": "object",
    "description": "Every error body: a stable code clients switch on, a message for people, "
    "and machine-readable context (which field, which limit, which gate).",
    "required": ["error", "detail", "context"],
    "additionalProperties": False,
    "properties": {
        "error": {"type": "string", "description": "Stable error code."},
        "detail": {"type": "string"},
        "context": {"type": "object"},
    },
}
_VALIDATION_SCHEMA: dict[str, Any] = {
    "title": _VALIDATION,
    "description": "The request does not match this document: each entry of `context.errors` "
    "names the offending part (`loc`: `body`, `query`, `path` or `header`, then the field).",
    "allOf": [{"$ref": _REF + _ERROR}],
    "properties": {
        "error": {"const": _INVALID_REQUEST},
        "context": {
            "type": "object",
            "required": ["errors"],
            "properties": {
                "errors": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["loc", "msg", "type"],
                        "additionalProperties": False,
                        "properties": {
                            "loc": {
                                "type": "array",
                                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                            },
                            "msg": {"type": "string"},
                            "type": {"type": "string"},
                        },
                    },
                }
            },
        },
    },
}


def error_response(codes: Iterable[str]) -> dict[str, Any]:
    """An OpenAPI response whose body is an ``Error`` carrying one of ``codes``."""
    ordered = sorted(set(codes))
    others = [c for c in ordered if c != _INVALID_REQUEST]
    branches: list[dict[str, Any]] = []
    if _INVALID_REQUEST in ordered:
        branches.append({"$ref": _REF + _VALIDATION})
    if others:
        branches.append(
            {"allOf": [{"$ref": _REF + _ERROR}], "properties": {"error": {"enum": others}}}
        )
    schema = branches[0] if len(branches) == 1 else {"oneOf": branches}
    return {
        "description": ", ".join(f"`{c}`" for c in ordered),
        "content": {"application/json": {"schema": schema}},
        ERROR_CODES_KEY: ordered,
    }


def add_error_codes(responses: dict[str, Any], status: int, codes: Iterable[str]) -> None:
    """Merge ``codes`` into the error response for ``status`` (creating it)."""
    key = str(status)
    known = responses.get(key, {}).get(ERROR_CODES_KEY, [])
    responses[key] = error_response([*known, *codes])


# (applies to the operation?, status, codes): what any operation of that shape can answer.
_Rule = tuple[Callable[[str, str, dict[str, Any]], bool], int, tuple[str, ...]]


def _secured(path: str, _method: str, op: dict[str, Any]) -> bool:
    return bool(op.get("security"))


def _uses_database(path: str, _method: str, _op: dict[str, Any]) -> bool:
    return path not in _UNPROTECTED


def _writes(_path: str, method: str, _op: dict[str, Any]) -> bool:
    return method in _WRITE_METHODS


def _has_param(
    location: str, name: str | None = None
) -> Callable[[str, str, dict[str, Any]], bool]:
    def check(_path: str, _method: str, op: dict[str, Any]) -> bool:
        return any(
            p.get("in") == location and (name is None or p.get("name") == name)
            for p in op.get("parameters", [])
        )

    return check


def _json_body(_path: str, _method: str, op: dict[str, Any]) -> bool:
    return "application/json" in op.get("requestBody", {}).get("content", {})


GENERIC_RULES: list[_Rule] = [
    # get_principal: no/bad token, or a CI OIDC token that fails verification or was used.
    (_secured, 401, ("unauthenticated", "oidc_token_invalid", "oidc_token_reused")),
    (_secured, 503, ("oidc_provider_unavailable",)),
    # api/errors.py: a busy/locked database or a dropped connection → 503 + Retry-After.
    (_uses_database, 503, ("unavailable",)),
    # api/errors.py: a unique/foreign-key race no service turned into a domain error.
    (_writes, 409, ("conflict",)),
    # WriteContext.idempotent: malformed key, same key in flight, same key with another body.
    (_has_param("header", "Idempotency-Key"), 400, ("bad_request",)),
    (_has_param("header", "Idempotency-Key"), 409, ("idempotency_key_in_flight",)),
    (_has_param("header", "Idempotency-Key"), 422, ("idempotency_key_reused",)),
    # FastAPI: a body that is not UTF-8 cannot be parsed at all.
    (_json_body, 400, ("bad_request",)),
    # A path parameter that decodes to something with "/" in it matches no route.
    (_has_param("path"), 404, ("not_found",)),
]


def _refusals(node: Any, schemas: dict[str, Any], seen: set[str]) -> Iterator[dict[str, Any]]:
    """Every ``x-refused-with`` entry (``refs.documented``) in a schema, through its $refs."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF) and ref not in seen:
            seen.add(ref)
            yield from _refusals(schemas.get(ref.removeprefix(_REF)), schemas, seen)
        for key, value in node.items():
            if key == REFUSED_WITH:
                yield from value
            else:
                yield from _refusals(value, schemas, seen)
    elif isinstance(node, list):
        for item in node:
            yield from _refusals(item, schemas, seen)


def _complete_operation(
    path: str, method: str, op: dict[str, Any], schemas: dict[str, Any]
) -> None:
    responses: dict[str, Any] = op.setdefault("responses", {})
    validation = responses.get("422", {}).get("content", {}).get("application/json", {})
    if validation.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
        del responses["422"]  # FastAPI's default body; the app sends api/errors.py's instead
    if op.get("parameters") or op.get("requestBody"):
        # Whatever FastAPI validates (and only then) can fail validation.
        add_error_codes(responses, 422, [_INVALID_REQUEST])
    if path in _UNPROTECTED:
        op["security"] = []
    for applies, status, codes in GENERIC_RULES:
        if applies(path, method, op):
            add_error_codes(responses, status, codes)
    inputs = [op.get("parameters", []), op.get("requestBody", {})]
    for refused in _refusals(inputs, schemas, set()):
        add_error_codes(responses, refused["status"], [refused["error"]])


# The strict JSON body parser (api/json_body.py) refuses NUL anywhere in a body: no database
# text column and no canonical audit record can hold it. Free-text strings say so.
_NO_NUL = "^[^\\u0000]*$"
_CONSTRAINED = frozenset({"pattern", "enum", "const", "format"})


def _storable_text(node: Any) -> None:
    """Give every free-text string (and free-form object keys) of a schema the no-NUL rule."""
    if isinstance(node, list):
        for item in node:
            _storable_text(item)
        return
    if not isinstance(node, dict):
        return
    types = node.get("type")  # not a schema keyword when a property is *named* "type"
    kinds = set(types) if isinstance(types, list) else {types} if isinstance(types, str) else set()
    if "string" in kinds and not _CONSTRAINED & node.keys():
        node["pattern"] = _NO_NUL
    if "object" in kinds and node.get("additionalProperties", True) is not False:
        node.setdefault("propertyNames", {"pattern": _NO_NUL})
    for key, value in node.items():
        if key not in ("examples", "example", "default", "const", "enum"):
            _storable_text(value)


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """The generated document with the error model, the real 422 and the generic codes."""
    doc = copy.deepcopy(document)
    schemas: dict[str, Any] = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    _storable_text(schemas)
    schemas[_ERROR] = _ERROR_SCHEMA
    schemas[_VALIDATION] = _VALIDATION_SCHEMA
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if isinstance(op, dict) and "responses" in op:
                _complete_operation(path, method, op, schemas)
    return doc


def install_openapi(app: FastAPI) -> None:
    """Serve the completed document as ``app.openapi()`` (built once, then cached)."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]
