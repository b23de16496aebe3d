"""Strict JSON request bodies: no duplicate keys, no NaN/Infinity, bounded nesting, only
storable text (no NUL, no unpaired surrogates, no keys that collide after NFC).

FastAPI parses JSON bodies with ``json.loads`` on the event loop, which keeps the *last* of two
equal keys (``{"share": 10, "share": 10000}`` means different things to different parsers in a
chain of proxies), accepts ``NaN``/``Infinity`` and nests as deep as the C recursion limit.
Routes of :func:`registry.api.routes._common.authenticated_router` use :class:`StrictJsonRoute`,
whose request parses with :func:`parse_strict` instead; a refusal is FastAPI's own
``json_invalid`` validation error (``422 invalid_request``), naming what is wrong. Bodies above
``THREAD_THRESHOLD`` bytes (base-model manifests) are parsed in the thread pool so the event loop
keeps serving. The body's size was bounded before it was read (:mod:`registry.api.guard`).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from registry.validation.strict_json import DuplicateKey, no_duplicates, reject_constant

THREAD_THRESHOLD = 256 * 1024
DEFAULT_MAX_DEPTH = 32


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _unstorable(text: str) -> str | None:
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    return "NUL character" if found.group() == "\x00" else "unpaired UTF-16 surrogate"


def _problem(value: Any, max_depth: int) -> str | None:
    """Why a parsed document cannot be taken, or None: nesting deeper than ``max_depth``, a
    NUL or an unpaired surrogate in a string or key (no database column and no canonical
    audit record can hold them), keys of one object equal after NFC normalisation (the
    audit log's canonical form would merge them)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if (why := _unstorable(node)) is not None:
                return why
            continue
        if not isinstance(node, dict | list):
            continue
        if depth > max_depth:
            return f"nesting deeper than {max_depth} levels"
        if isinstance(node, dict):
            keys = list(node)
            for key in keys:
                if (why := _unstorable(key)) is not None:
                    return f"{why} in a key"
            if not all(k.isascii() for k in keys) and len(
                {unicodedata.normalize("NFC", k) for k in keys}
            ) != len(keys):
                return "keys equal after Unicode normalisation"
            children: Any = node.values()
        else:
            children = node
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list | str))
    return None


def parse_strict(body: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Parse a JSON document; ``json.JSONDecodeError`` for duplicate keys, non-finite numbers,
    nesting deeper than ``max_depth``, unstorable text (:func:`_problem`) and anything
    ``json.loads`` refuses."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    try:
        value = json.loads(text, object_pairs_hook=no_duplicates, parse_constant=reject_constant)
    except DuplicateKey as exc:
        raise json.JSONDecodeError(f"duplicate key {exc.key[:100]!r}", text, 0) from None
    except RecursionError:
        raise json.JSONDecodeError("nesting too deep", text, 0) from None
    except json.JSONDecodeError:
        raise
    except ValueError as exc:
        raise json.JSONDecodeError(str(exc), text, 0) from None
    if (why := _problem(value, max_depth)) is not None:
        raise json.JSONDecodeError(why, text, 0)
    return value


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            settings = getattr(self.app.state, "settings", None)
            depth = settings.server.max_json_depth if settings is not None else DEFAULT_MAX_DEPTH
            if len(body) > THREAD_THRESHOLD:
                self._json = await run_in_threadpool(parse_strict, body, max_depth=depth)
            else:
                self._json = parse_strict(body, max_depth=depth)
        return self._json


class StrictJsonRoute(APIRoute):
    """An ``APIRoute`` whose endpoint sees a :class:`StrictJsonRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            return await original(StrictJsonRequest(request.scope, request.receive))

        return handler
