"""Shared route helpers: authenticated routers, OpenAPI error tables, pagination params, version
references in paths."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from registry.api.deps import get_principal
from registry.api.json_body import StrictJsonRoute
from registry.api.openapi import add_error_codes
from registry.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, page_of
from registry.api.params import PageToken
from registry.api.ranges import requested_range
from registry.errors import (
    AdapterNotFound,
    InvalidName,
    InvalidReference,
    NamespaceNotFound,
    RegistryError,
    VersionNotFound,
)
from registry.storage.base import ArtifactStore

R = TypeVar("R")
T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")]
DEFAULT_PAGE = DEFAULT_LIMIT

#: What a route naming an adapter (``NAMESPACE/NAME``, in its path or body) can answer when the
#: adapter is not there or the name is malformed.
ADAPTER_NOT_FOUND: tuple[type[RegistryError], ...] = (
    InvalidName,
    InvalidReference,
    NamespaceNotFound,
    AdapterNotFound,
)
#: What a route naming a version (``/{namespace}/{name}/versions/{selector}``) can answer
#: when the version is not there or the path is malformed.
VERSION_NOT_FOUND: tuple[type[RegistryError], ...] = (*ADAPTER_NOT_FOUND, VersionNotFound)

__all__ = [
    "ADAPTER_NOT_FOUND",
    "DEFAULT_PAGE",
    "VERSION_NOT_FOUND",
    "Limit",
    "PageDep",
    "PageQuery",
    "PageToken",
    "authenticated_router",
    "blob_response",
    "responses",
    "version_ref",
]


@dataclass(frozen=True, slots=True)
class PageQuery:
    """A list route's ``?limit=&page_token=``: ask the query for ``fetch`` rows (one past the
    page, which says whether there is a next one), then build the page with ``of``."""

    limit: int
    token: str | None

    @property
    def fetch(self) -> int:
        return self.limit + 1

    def of(
        self, rows: Sequence[R], read: Callable[[R], T], key: Callable[[T], list[Any]]
    ) -> Page[T]:
        return page_of(rows, self.limit, read, key)


def _page_query(limit: Limit = DEFAULT_PAGE, page_token: PageToken = None) -> PageQuery:
    return PageQuery(limit, page_token)


#: The ``limit`` and ``page_token`` query parameters of a list route, as one ``PageQuery``.
PageDep = Annotated[PageQuery, Depends(_page_query)]


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


def version_ref(namespace: str, name: str, selector: str) -> str:
    """``vN``, ``N``, ``latest`` or ``sha256:<hex>`` in a path → a full reference."""
    if selector.isdigit():
        selector = f"v{selector}"
    return f"{namespace}/{name}@{selector}"


def blob_response(
    store: ArtifactStore,
    digest_hex: str,
    file_name: str,
    byte_range: str | None = None,
    if_range: str | None = None,
) -> StreamingResponse:
    """A stored file streamed from the artifact store (constant memory), its digest in
    ``X-Content-Digest``: the client re-hashes while writing and refuses a mismatch. A
    ``Range`` (``registry.api.ranges``) is answered ``206`` with that part only (how an
    interrupted download resumes); the digest header is the whole file's either way."""
    stat = store.stat_blob(digest_hex)
    etag = f'"{digest_hex}"'
    headers = {
        "X-Content-Digest": f"sha256:{digest_hex}",
        "Content-Disposition": f'attachment; filename="{file_name}"',
        "Accept-Ranges": "bytes",
        "ETag": etag,
    }
    part = requested_range(byte_range, stat.size, etag=etag, if_range=if_range)
    if part is None:
        return StreamingResponse(
            store.iter_blob(digest_hex),
            media_type="application/octet-stream",
            headers={**headers, "Content-Length": str(stat.size)},
        )
    start, stop = part
    return StreamingResponse(
        store.iter_blob_range(digest_hex, start, stop),
        status_code=206,
        media_type="application/octet-stream",
        headers={
            **headers,
            "Content-Length": str(stop - start),
            "Content-Range": f"bytes {start}-{stop - 1}/{stat.size}",
        },
    )
