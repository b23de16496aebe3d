"""The root of the error hierarchy and the generic errors every domain's errors extend.

Every failure the registry reports has a stable ``code`` and an HTTP status. The ``code`` is part
of the API contract (clients and the CLI switch on it); class names are not. No FastAPI import
here: services raise these, ``api/errors.py`` renders them as
``{"error": code, "detail": message, "context": {...}}``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class RegistryError(Exception):
    """Base of every error the registry reports on purpose."""

    code: ClassVar[str] = "registry_error"
    status_code: ClassVar[int] = 500
    #: Set on refusals of mutating calls: the audit event the request layer appends in a
    #: transaction of its own after the refused request's transaction rolled back.
    audit_entry: Any = None

    def __init__(self, detail: str, *, context: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.context: dict[str, Any] = dict(context or {})

    def to_body(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail, "context": self.context}


# --- generic -------------------------------------------------------------------------------


class InvalidRequest(RegistryError):
    """The request does not match the API document. Its body has the shape of a schema
    validation failure (``context["errors"]``: ``loc``, ``msg``, ``type``), whoever raised it."""

    code = "invalid_request"
    status_code = 422

    def __init__(
        self,
        detail: str,
        *,
        loc: tuple[str | int, ...] = ("body",),
        context: dict[str, Any] | None = None,
    ) -> None:
        ctx = dict(context or {})
        ctx.setdefault("errors", [{"loc": list(loc), "msg": detail, "type": "value_error"}])
        super().__init__(detail, context=ctx)


class BadRequest(RegistryError):
    code = "bad_request"
    status_code = 400


class InvalidName(RegistryError):
    code = "invalid_name"
    status_code = 400


class InvalidReference(RegistryError):
    code = "invalid_reference"
    status_code = 400


class InvalidPageToken(RegistryError):
    code = "invalid_page_token"
    status_code = 400


class InvalidDigest(RegistryError):
    code = "invalid_digest"
    status_code = 400


class InvalidUri(RegistryError):
    code = "invalid_uri"
    status_code = 400


class UriNotAllowed(RegistryError):
    code = "uri_not_allowed"
    status_code = 403


class NotFound(RegistryError):
    code = "not_found"
    status_code = 404


class Conflict(RegistryError):
    code = "conflict"
    status_code = 409


class PayloadTooLarge(RegistryError):
    code = "payload_too_large"
    status_code = 413


class RangeNotSatisfiable(RegistryError):
    """A download's ``Range`` header is malformed or outside the file (``context["size"]``; the
    answer carries ``Content-Range: bytes */SIZE``)."""

    code = "range_not_satisfiable"
    status_code = 416


class Unavailable(RegistryError):
    code = "unavailable"
    status_code = 503


class RequestTimeout(RegistryError):
    """The client sent its request body too slowly (slow-loris guard); the connection closes."""

    code = "request_timeout"
    status_code = 408


class HeadersTooLarge(RegistryError):
    """The request line and headers exceed ``server.max_header_bytes`` (the connection closes;
    answered by the HTTP protocol itself, before any route is known)."""

    code = "headers_too_large"
    status_code = 431


class IntegrityFailure(RegistryError):
    """Stored bytes no longer match their digest (tampered or corrupted blob)."""

    code = "integrity_failure"
    status_code = 502


class DatabaseUnavailable(Unavailable):
    """The database did not answer in time, refused work (disk full) or is unreachable."""

    code = "database_unavailable"
