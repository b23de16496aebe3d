"""The serving hot path: resolve a key to an adapter version, fetch routing tables.

Async routes answering from the in-process routing cache with pre-serialised bytes: in steady
state no database, no thread-pool hop, no response-model validation. GET requests reach them
through ``registry.api.fast_path`` (a middleware ahead of FastAPI's exception middleware, exit
stacks and router: those layers cost more than the work itself here); HEAD, and any request
that middleware does not take, through plain Starlette routes (``fast_routes``, matched before
everything else). The same endpoints are also registered on ``router`` so the OpenAPI schema
documents them (parameters declared by hand). Errors go through the app's exception handlers
on every path.
Cache misses (a new revision, a first token) are resolved in a worker thread.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Route

from registry import refs
from registry.access.resolve_guard import ResolveGuard
from registry.api.deps import principal_from_header
from registry.api.openapi import BEARER_SCHEME
from registry.api.routes._common import responses
from registry.auth.principal import AuthenticatedPrincipal
from registry.canary.hashing import arm as arm_of
from registry.deployments.routing import RouteTable, RoutingCache
from registry.errors import (
    BadRequest,
    DeploymentNotFound,
    InvalidName,
    InvalidRequest,
    NothingServed,
    PolicyDenied,
)
from registry.metrics import Metrics

router = APIRouter(prefix="/api/v1/deployments", tags=["serving"])

_NAME_PARAM = {
    "name": "name",
    "in": "path",
    "required": True,
    "description": "Deployment name.",
    "schema": {"type": "string", "pattern": refs.SIMPLE_NAME_PATTERN},
}
_KEY_PARAM = {
    "name": "key",
    "in": "query",
    "required": True,
    "description": "Routing key (tenant, user), 1..1024 characters.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 1024},
}


# These routes authenticate by hand (no dependency), so the document says so by hand too.
_SECURED: dict[str, Any] = {"security": [{BEARER_SCHEME: []}]}


def _key(request: Request) -> str | None:
    """The ``key`` query parameter. A plain ``key=VALUE`` query (nothing to unquote, nothing
    else) is read directly; anything else goes through Starlette's parser (same answer)."""
    query: bytes = request.scope["query_string"]
    if query.startswith(b"key=") and not any(c in query for c in b"%+&;"):
        return query[4:].decode("latin-1")  # as Starlette decodes a raw query string
    value: str | None = request.query_params.get("key")
    return value


async def _caller(request: Request) -> AuthenticatedPrincipal:
    """The caller, from the raw header (no thread hop when the token is
    cached). No dependency injection here: on this path FastAPI's parameter solving costs more
    than the work itself."""
    return await principal_from_header(request, request.headers.get("authorization"))


async def _table(request: Request, name: str, principal: AuthenticatedPrincipal) -> RouteTable:
    refs.deployment_name(name)
    routing: RoutingCache = request.app.state.routing
    table = routing.cached(name) or await run_in_threadpool(routing.load, name)
    if table is None:
        raise DeploymentNotFound("no such deployment", context={"deployment": name})
    guard: ResolveGuard = request.app.state.resolve_guard
    if not guard.cached(principal, table.namespace, name):
        await run_in_threadpool(guard.decide, principal, table.namespace, name)
    return table


@router.get(
    "/{name}/resolve",
    response_class=Response,
    responses=responses(
        InvalidName, DeploymentNotFound, NothingServed, PolicyDenied, BadRequest, InvalidRequest
    ),
    openapi_extra={"parameters": [_NAME_PARAM, _KEY_PARAM], **_SECURED},
)
async def resolve(request: Request) -> Response:
    """Which adapter version serves ``key`` now: arm, ref, version, digest, base and its digest,
    peft type, rank, serving name (unique per digest) and the files with download URLs. Sticky:
    ``bucket = uint64_be(sha256(salt ":" key)[:8]) mod 10000``, candidate when below the share
    (docs/serving.md)."""
    name: str = request.path_params["name"]
    principal = await _caller(request)
    key = _key(request)
    if key is None or not 1 <= len(key) <= 1024:
        raise InvalidRequest("key is required (1..1024 characters)", loc=("query", "key"))
    table = await _table(request, name, principal)
    arm = "stable"
    if table.candidate is not None and table.share_bp > 0:
        try:
            arm = arm_of(table.salt, key, table.share_bp)
        except ValueError as exc:
            raise BadRequest(str(exc), context={"parameter": "key"}) from exc
    body = table.candidate if arm == "candidate" else table.stable
    if body is None:
        raise NothingServed(
            "the deployment has no stable version yet", context={"deployment": name}
        )
    metrics: Metrics = request.app.state.metrics
    metrics.resolved(name, arm)
    return Response(body, media_type="application/json", headers={"ETag": table.etag})


@router.get(
    "/{name}/routing-table",
    response_class=Response,
    responses=responses(InvalidName, DeploymentNotFound, PolicyDenied),
    openapi_extra={"parameters": [_NAME_PARAM], **_SECURED},
)
async def routing_table(request: Request) -> Response:
    """The deployment's current routing table for client-side resolution (``Router``), with an
    ``ETag``; ``If-None-Match`` with the current ETag answers ``304`` and no body."""
    name: str = request.path_params["name"]
    principal = await _caller(request)
    table = await _table(request, name, principal)
    if_none_match = request.headers.get("if-none-match")
    metrics: Metrics = request.app.state.metrics
    if if_none_match is not None and table.etag in [t.strip() for t in if_none_match.split(",")]:
        metrics.routing_tables.labels(deployment=name, status="304").inc()
        return Response(status_code=304, headers={"ETag": table.etag})
    metrics.routing_tables.labels(deployment=name, status="200").inc()
    return Response(table.table, media_type="application/json", headers={"ETag": table.etag})


def fast_routes() -> list[BaseRoute]:
    """The two endpoints as plain Starlette routes, to put ahead of the FastAPI routes."""
    return [
        Route(f"{router.prefix}/{{name}}/resolve", resolve, methods=["GET"]),
        Route(f"{router.prefix}/{{name}}/routing-table", routing_table, methods=["GET"]),
    ]
