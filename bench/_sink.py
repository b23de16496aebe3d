"""A bare ASGI app for the upload benchmark's transport ceiling: it drains the request body and
sha256-hashes it in-line (no framework, no disk, no thread pool), then answers the digest."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


async def app(
    scope: Scope,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    h = hashlib.sha256()
    size = 0
    while True:
        message = await receive()
        body = message.get("body", b"")
        h.update(body)
        size += len(body)
        if not message.get("more_body", False):
            break
    payload = json.dumps({"digest": "sha256:" + h.hexdigest(), "size": size}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": payload})
