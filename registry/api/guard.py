"""Request guard: bounded time and memory for every request before the application reads it.

A plain ASGI middleware (no ``BaseHTTPMiddleware``: it must not buffer streaming uploads) between
the request-id middleware and the serving fast path. FastAPI reads and parses a JSON body
*before* it solves dependencies, so without this a caller with no token at all could make the
server receive and parse any amount of JSON. For every HTTP request:

1. A declared body (``Content-Length``) over the route's limit is refused with ``413
   payload_too_large`` and a malformed one with ``400`` — nothing of the body is read, and the
   connection is closed.
2. A request that may carry a body (any method but GET/HEAD/OPTIONS) is authenticated
   **before** its body is read: ``401`` without reading it. The
   principal is handed to the endpoint through the request state (``get_principal`` takes it
   from there), so a single-use CI token is consumed once. A console form
   (``/console/...``) is authenticated by its session cookie instead; the sign-in form alone
   is read unauthenticated (within the same limits).
3. A JSON body is then received in full within ``server.body_timeout_s`` and the limit (``408
   request_timeout`` / ``413``) and replayed to the application; the streamed file upload
   (``PUT /api/v1/uploads/{id}/files/{name}``) passes through with an idle timeout between
   chunks instead (``server.idle_timeout_s``; its size is bounded by the staging writer).

GET/HEAD/OPTIONS requests pass straight through (no route reads their body; resolve and the
routing table are answered by the serving fast path outside this middleware); their time is
bounded by the endpoints' own dependency timeouts. Header size and header time are
bounded by the protocol (:mod:`registry.api.protocol`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry.api.deps import principal_from_header
from registry.api.errors import handler_for
from registry.errors import BadRequest, PayloadTooLarge, RegistryError, RequestTimeout
from registry.settings import ServerSettings

PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})
# Console forms authenticate by their session cookie (sign-in, by the token in its form).
CONSOLE_PREFIX = "/console/"
CONSOLE_SIGN_IN = "/console/sign-in"
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_STREAM_PUT = re.compile(r"/api/v1/uploads/[^/]+/files/[^/]+")
_MANIFEST_POST = "/api/v1/base-models"
_CLOSE = {"Connection": "close"}


class _Disconnected(Exception):
    """The client went away while its body was being received."""


class RequestGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        limits: ServerSettings,
        console_auth: Callable[[Request], Awaitable[None]],
    ) -> None:
        self.app = app
        self.console_auth = console_auth
        self.json_limit = limits.max_json_body_bytes
        self.manifest_limit = limits.max_manifest_body_bytes
        self.body_timeout_s = limits.body_timeout_s
        self.idle_timeout_s = limits.idle_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        if method in _NO_BODY_METHODS:
            # No route reads a body of these: one sent anyway is drained and dropped by the
            # server (within its flow control), never buffered or parsed.
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            path: str = scope["path"]
            stream = method == "PUT" and _STREAM_PUT.fullmatch(path) is not None
            limit = None if stream else self._limit(method, path)
            length = _content_length(scope)
            if limit is not None and length is not None and length > limit:
                raise PayloadTooLarge(
                    "request body exceeds the limit for this route", context={"limit": limit}
                )
            if path.startswith(CONSOLE_PREFIX):
                if path != CONSOLE_SIGN_IN:
                    await self.console_auth(request)
            elif path not in PUBLIC_PATHS:
                await principal_from_header(request, request.headers.get("authorization"))
            if stream:
                await self.app(scope, self._idle_receive(receive), send)
                return
            assert limit is not None
            body = await self._read_body(receive, limit)
        except _Disconnected:
            return
        except Exception as exc:
            response = await render_error(request, exc)
            await response(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    def _limit(self, method: str, path: str) -> int:
        if method == "POST" and path.rstrip("/") == _MANIFEST_POST:
            return self.manifest_limit
        return self.json_limit

    async def _read_body(self, receive: Receive, limit: int) -> bytes:
        """The whole body, within ``limit`` bytes and ``body_timeout_s`` seconds."""
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _Disconnected
                    chunk: bytes = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        raise PayloadTooLarge(
                            "request body exceeds the limit for this route",
                            context={"limit": limit},
                        )
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            raise RequestTimeout(
                "the request body was not received in time",
                context={"timeout_s": self.body_timeout_s},
            ) from None

    def _idle_receive(self, receive: Receive) -> Receive:
        idle = self.idle_timeout_s

        async def wrapped() -> Message:
            try:
                async with asyncio.timeout(idle):
                    return await receive()
            except TimeoutError:
                raise RequestTimeout(
                    "no request body bytes received in time", context={"idle_timeout_s": idle}
                ) from None

        return wrapped


def _content_length(scope: Scope) -> int | None:
    values = [v for k, v in scope["headers"] if k == b"content-length"]
    if not values:
        return None
    if len(set(values)) != 1 or not values[0].strip().isdigit() or len(values[0]) > 20:
        raise BadRequest("malformed Content-Length")
    return int(values[0])


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the already-read body once, then the real channel (the app may
    wait on it for a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def render_error(request: Request, exc: Exception) -> Response:
    """Render ``exc`` with the application's own handlers; the connection is closed after a
    refusal that may have left the body unread."""
    handler = handler_for(request, exc)
    if handler is None:
        raise exc
    response = await handler(request, exc)
    if isinstance(exc, RegistryError) and exc.status_code in (400, 401, 403, 408, 413):
        response.headers.update(_CLOSE)
    return response
