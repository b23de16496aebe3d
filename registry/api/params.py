"""Path, query and header parameters as the OpenAPI document states them.

Each pattern is the one the service checks (``registry.refs``, the idempotency store,
the upload allow-lists), quoted into the document with ``json_schema_extra`` rather than
enforced by FastAPI: the service keeps answering a malformed value with its own stable code
(``invalid_name``, ``invalid_reference``... 400) instead of a generic 422, the document says
exactly which strings get past that check, and which code refuses the others
(``refs.documented``; ``registry.api.openapi`` declares that code on the operation).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import Header, Path, Query
from pydantic import BeforeValidator

from registry import refs
from registry.errors import (
    BadRequest,
    ForbiddenFile,
    InvalidDigest,
    InvalidName,
    InvalidPageToken,
    InvalidReference,
)
from registry.idempotency.service import KEY_PATTERN
from registry.schemas import documented
from registry.uploads.service import BASE_FILE_PATTERN
from registry.validation import ALLOWED_NAMES


def _alternatives(names: frozenset[str], *patterns: str) -> str:
    literal = [re.escape(n) for n in sorted(names)]
    inner = [p.removeprefix("^").removesuffix("$") for p in patterns]
    return "^(?:" + "|".join([*literal, *inner]) + ")$"


# Names of files a push may upload: the adapter allow-list, or a base checkpoint's files.
UPLOAD_FILE_PATTERN = _alternatives(ALLOWED_NAMES, BASE_FILE_PATTERN)
# Opaque cursors: unpadded url-safe base64 (``registry.api.pagination.encode_token``).
PAGE_TOKEN_PATTERN = r"^[A-Za-z0-9_-]*$"
# ``If-Match``: a deployment revision, optionally quoted and weak (``"7"``, ``W/"7"``, ``7``).
IF_MATCH_PATTERN = r'^(?:W/)?"?([0-9]+)"?$'
# RFC 3339 (``format: date-time``): a date, a time and a zone (``Z`` or an offset).
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _rfc3339(value: object) -> object:
    """Take a time as the document says (``format: date-time``) and nothing else: pydantic
    would also read ``0.5`` as seconds since 1970 and a time without a zone as local."""
    if isinstance(value, str) and not _RFC3339.fullmatch(value):
        raise ValueError(
            "expected an RFC 3339 date-time with a time zone, e.g. 2026-11-25T10:00:00Z"
        )
    return value


Rfc3339 = Annotated[datetime, BeforeValidator(_rfc3339)]


def is_rfc3339(value: str) -> bool:
    """Whether ``value`` is a date-time as ``Rfc3339`` takes it (forms outside a query model)."""
    return _RFC3339.fullmatch(value) is not None


NamespacePath = Annotated[
    str, Path(description="Namespace name.", json_schema_extra=documented(refs.SIMPLE_NAME_PATTERN))
]
AdapterPath = Annotated[
    str, Path(description="Adapter name.", json_schema_extra=documented(refs.SIMPLE_NAME_PATTERN))
]
SelectorPath = Annotated[
    str,
    Path(
        description="``vN`` or ``N``, ``latest`` or ``sha256:<hex>``.",
        json_schema_extra=documented(refs.SELECTOR_PATTERN, InvalidReference),
    ),
]
DeploymentPath = Annotated[
    str,
    Path(description="Deployment name.", json_schema_extra=documented(refs.SIMPLE_NAME_PATTERN)),
]
PrincipalPath = Annotated[
    str, Path(description="Principal name.", json_schema_extra=documented(refs.PRINCIPAL_PATTERN))
]
BaseModelPath = Annotated[
    str,
    Path(
        description="Base model name (``NAME`` or ``ORG/NAME``).",
        json_schema_extra=documented(refs.BASE_NAME_PATTERN),
    ),
]
RevisionPath = Annotated[
    str,
    Path(description="Base model revision.", json_schema_extra=documented(refs.REVISION_PATTERN)),
]
UploadFilePath = Annotated[
    str,
    Path(
        description="File name: one of the adapter or base-checkpoint file names.",
        json_schema_extra=documented(UPLOAD_FILE_PATTERN, ForbiddenFile),
    ),
]
VersionFilePath = Annotated[str, Path(description="File name.")]

NamespaceQ = Annotated[
    str | None, Query(max_length=64, json_schema_extra=documented(refs.SIMPLE_NAME_PATTERN))
]
DeploymentQ = Annotated[
    str | None, Query(max_length=64, json_schema_extra=documented(refs.SIMPLE_NAME_PATTERN))
]
PrincipalQ = Annotated[
    str | None, Query(max_length=128, json_schema_extra=documented(refs.PRINCIPAL_PATTERN))
]
TagQ = Annotated[str | None, Query(max_length=64, json_schema_extra=documented(refs.TAG_PATTERN))]
SuiteQ = Annotated[
    str | None, Query(max_length=128, json_schema_extra=documented(refs.SUITE_PATTERN))
]
BaseQ = Annotated[
    str | None,
    Query(
        max_length=330,
        description="NAME or NAME@REV",
        json_schema_extra=documented(refs.BASE_FILTER_PATTERN),
    ),
]
AdapterRefQ = Annotated[
    str,
    Query(
        max_length=300,
        description="NS/NAME[@vN|@latest|@sha256:<hex>]",
        json_schema_extra=documented(refs.ADAPTER_REF_PATTERN, InvalidName, InvalidReference),
    ),
]
PageToken = Annotated[
    str | None,
    Query(
        max_length=512,
        description="next_page_token of the previous page.",
        json_schema_extra=documented(PAGE_TOKEN_PATTERN, InvalidPageToken),
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Retry key: the same key and body replay the first answer (kept"
        " REGISTRY_SERVER__IDEMPOTENCY_TTL_S, default 24 h).",
        json_schema_extra=documented(KEY_PATTERN, BadRequest),
    ),
]
IfMatch = Annotated[
    str | None,
    Header(
        max_length=64,
        description='The revision you expect, e.g. "7" (the ETag of GET).',
        json_schema_extra=documented(IF_MATCH_PATTERN, BadRequest),
    ),
]
ContentDigest = Annotated[
    str,
    Header(
        alias="X-Content-Digest",
        max_length=200,
        description="sha256:<hex> of the body (required).",
        json_schema_extra=documented(refs.DIGEST_PATTERN, InvalidDigest),
    ),
]
