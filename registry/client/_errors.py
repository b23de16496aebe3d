"""The client's error type and the mapping of registry error answers onto it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

JSON = dict[str, Any]

_STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    409: "conflict",
    412: "conflict",
    413: "payload_too_large",
    422: "invalid_request",
    502: "server_unavailable",
    503: "server_unavailable",
    504: "server_unavailable",
}


class ClientError(Exception):
    """An error answer of the registry (or a local failure with a stable ``code``).

    ``status`` is the HTTP status, 0 when no answer came (or the check was local).
    """

    def __init__(
        self, code: str, status: int, detail: str, context: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.status = status
        self.detail = detail
        self.context: dict[str, Any] = dict(context or {})

    def to_body(self) -> JSON:
        return {"error": self.code, "detail": self.detail, "context": self.context}


def error_from_response(response: httpx.Response) -> ClientError:
    """The :class:`ClientError` of a non-2xx answer: the registry's ``{"error", "detail",
    "context"}`` body, or a code derived from the HTTP status when there is none."""
    body: Any = None
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        context = body.get("context")
        return ClientError(
            body["error"],
            response.status_code,
            str(body.get("detail", "")),
            context if isinstance(context, dict) else {},
        )
    status = response.status_code
    code = _STATUS_CODES.get(status, "internal" if status >= 500 else "http_error")
    text = response.text[:500] if response.content else response.reason_phrase
    return ClientError(code, status, text or f"HTTP {status}", {"status": status})


def is_retryable(response: httpx.Response) -> bool:
    """503, or a 409 ``idempotency_key_in_flight`` (the first attempt is still running)."""
    if response.status_code == 503:
        return True
    if response.status_code == 409:
        try:
            body = response.json()
        except (ValueError, UnicodeDecodeError):
            return False
        return isinstance(body, dict) and body.get("error") == "idempotency_key_in_flight"
    return False
