"""Shared route helpers: authenticated routers, OpenAPI error tables, pagination params."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from registry.api.deps import get_principal
from registry.api.json_body import StrictJsonRoute
from registry.api.openapi import add_error_codes
from registry.api.pagination import DEFAULT_LIMIT, MAX_LIMIT
from registry.api.params import PageToken
from registry.errors import RegistryError

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")]
DEFAULT_PAGE = DEFAULT_LIMIT

__all__ = ["DEFAULT_PAGE", "Limit", "PageToken", "authenticated_router", "responses"]


def authenticated_router(**kwargs: Any) -> APIRouter:
    """Every non-health router goes through the one authentication dependency and parses JSON
    bodies strictly (:mod:`registry.api.json_body`)."""
    return APIRouter(dependencies=[Depends(get_principal)], route_class=StrictJsonRoute, **kwargs)


def responses(*errors: type[RegistryError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` listing the error codes a route can return (by status, in the one
    ``Error`` body). Codes every operation of its kind can return (401, 503, the idempotency
    and validation codes...) are added to the document by ``registry.api.openapi``."""
    out: dict[str, Any] = {}
    for cls in errors:
        add_error_codes(out, cls.status_code, [cls.code])
    return {int(status): entry for status, entry in out.items()}
