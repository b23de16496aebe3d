"""The OpenAPI document and Prometheus metrics (authenticated like every non-health route; the
token-free metrics listener on its own port is registry.api.metrics_port)."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from registry.access.actor import registry_resource
from registry.api.deps import ActorDep
from registry.api.routes._common import authenticated_router

router = authenticated_router(tags=["meta"])


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request) -> dict[str, Any]:
    """The API's OpenAPI 3 document, error codes included."""
    schema: dict[str, Any] = request.app.openapi()
    return schema


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, actor: ActorDep) -> Response:
    """Prometheus metrics of this process (registry.metrics: HTTP per route, DB pool, S3 calls,
    resolves, routing tables, serving reports, controller decisions, rollbacks, process)."""
    actor.require("read", registry_resource())
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
