"""Shared route helpers: authenticated routers, OpenAPI error tables, pagination params."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from registry.api.deps import get_principal
from registry.api.json_body import StrictJsonRoute
from registry.api.pagination import DEFAULT_LIMIT, MAX_LIMIT
from registry.errors import RegistryError, Unauthenticated

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")]
PageToken = Annotated[
    str | None, Query(max_length=512, description="next_page_token of the previous page.")
]
DEFAULT_PAGE = DEFAULT_LIMIT


def authenticated_router(**kwargs: Any) -> APIRouter:
    """Every non-health router goes through the one authentication dependency and parses JSON
    bodies strictly (:mod:`registry.api.json_body`)."""
    return APIRouter(dependencies=[Depends(get_principal)], route_class=StrictJsonRoute, **kwargs)


def responses(*errors: type[RegistryError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` listing the error codes a route can return."""
    out: dict[int | str, dict[str, Any]] = {}
    classes: tuple[type[RegistryError], ...] = (Unauthenticated, *errors)
    for cls in classes:
        entry = out.setdefault(
            cls.status_code, {"description": "", "content": cls.schema()["content"]}
        )
        entry["description"] = ", ".join(filter(None, [entry["description"], f"`{cls.code}`"]))
    return out
