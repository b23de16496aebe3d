"""Request ids: taken from a well-formed ``X-Request-ID`` header or generated, stored on
``request.state.request_id`` (audit events carry it) and echoed on the response.

A plain ASGI middleware (no ``BaseHTTPMiddleware``): it must not buffer streaming uploads.
"""

from __future__ import annotations

import itertools
import os
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_VALID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
HEADER = b"x-request-id"
# Generated ids: a random per-process prefix and a counter (unique across replicas and restarts
# without drawing random bytes per request: this runs on every request, resolve included).
_PREFIX = os.urandom(8).hex()
_COUNTER = itertools.count(1)


def _reseed() -> None:
    """A forked worker (gunicorn --preload) gets a prefix of its own."""
    global _PREFIX, _COUNTER
    _PREFIX, _COUNTER = os.urandom(8).hex(), itertools.count(1)


os.register_at_fork(after_in_child=_reseed)


def new_request_id() -> bytes:
    return f"{_PREFIX}{next(_COUNTER):016x}".encode()


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == HEADER), b"")
        request_id = given if given and _VALID.match(given) else new_request_id()
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id.decode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != HEADER]
                message["headers"] = [*headers, (HEADER, request_id)]
            await send(message)

        await self.app(scope, receive, send_with_id)
