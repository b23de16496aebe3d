"""The OpenAPI document (authenticated like every non-health route)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from registry.api.routes._common import authenticated_router

router = authenticated_router(tags=["meta"])


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request) -> dict[str, Any]:
    """The API's OpenAPI 3 document, error codes included."""
    schema: dict[str, Any] = request.app.openapi()
    return schema
