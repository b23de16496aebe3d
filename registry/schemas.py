"""The shared pydantic bases of every domain's request and response bodies.

Each domain package keeps its own ``schemas.py`` (``registry/promotions/schemas.py`` holds the
body of ``POST /api/v1/promotions``); what they share is here: the strict request base (unknown
fields refused), the read base, the ``json_schema_extra`` helpers that state in the OpenAPI
document which stable error refuses a value the service checks itself, and ``FileRead``, the
body of one file in an upload session and in a published version alike.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from registry.errors import InvalidName, RegistryError


class Strict(BaseModel):
    """A request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class Read(BaseModel):
    """A response body built from an ORM row or a view."""

    model_config = ConfigDict(from_attributes=True)


class FileRead(Read):
    """One file: its name, ``sha256:<hex>`` digest and size in bytes."""

    name: str
    digest: str
    size: int


REFUSED_WITH = "x-refused-with"


def documented(pattern: str, *errors: type[RegistryError]) -> dict[str, Any]:
    """``json_schema_extra`` for a string the service checks against ``pattern`` itself,
    refusing a mismatch with one of ``errors`` (default ``invalid_name``; not FastAPI's 422):
    the OpenAPI document states both, and ``registry.api.openapi`` adds the errors to the
    responses of every operation that takes such a string."""
    return {"pattern": pattern, **refused_with(*(errors or (InvalidName,)))}


def refused_with(*errors: type[RegistryError]) -> dict[str, Any]:
    """``json_schema_extra`` naming the errors that refuse a value the service checks itself."""
    return {REFUSED_WITH: [{"status": e.status_code, "error": e.code} for e in errors]}
