"""Request ids: taken from a well-formed ``X-Request-ID`` header or generated, stored on
``request.state.request_id`` (audit events carry it) and echoed on the response.

A plain ASGI middleware (no ``BaseHTTPMiddleware``): it must not buffer streaming uploads.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_VALID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
HEADER = b"x-request-id"


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == HEADER), b"")
        request_id = given if _VALID.match(given) else uuid.uuid4().hex.encode()
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id.decode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != HEADER]
                message["headers"] = [*headers, (HEADER, request_id)]
            await send(message)

        await self.app(scope, receive, send_with_id)
