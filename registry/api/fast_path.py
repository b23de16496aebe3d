"""The serving hot path ahead of FastAPI's exception middleware, exit stacks and router.

``GET /api/v1/deployments/{name}/resolve`` and ``…/routing-table`` are the most frequent
requests by far and answer from memory; for them the framework layers between the request-id
middleware and the endpoint cost more than the work. This middleware recognises the two paths
and calls the same endpoint functions (``registry.api.routes.serving``) directly; an exception
goes through the application's own exception handlers (looked up along the exception's MRO, as
Starlette does), so answers and error bodies are the same as through the router. Every other
request — and HEAD, and any path that is not exactly one of these two — passes through untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from registry.api.errors import handler_for
from registry.api.routes import serving

PREFIX = serving.router.prefix + "/"
Endpoint = Callable[[Request], Awaitable[Response]]
ENDPOINTS: dict[str, Endpoint] = {
    "resolve": serving.resolve,
    "routing-table": serving.routing_table,
}
# The routes the router would have matched, left in ``scope["route"]`` as the router does (the
# HTTP metrics label requests by their route's path template).
_RESOLVE_ROUTE, _ROUTING_TABLE_ROUTE = serving.fast_routes()
ROUTES: dict[str, BaseRoute] = {"resolve": _RESOLVE_ROUTE, "routing-table": _ROUTING_TABLE_ROUTE}


class ServingFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = _match(scope) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except Exception as exc:
            handler = handler_for(request, exc)
            if handler is None:
                raise  # → ServerErrorMiddleware, as through the router
            response = await handler(request, exc)
        await response(scope, receive, send)


def _match(scope: Scope) -> Endpoint | None:
    """The endpoint for ``GET PREFIX{name}/{resolve|routing-table}``, with ``path_params`` set;
    None for anything else."""
    if scope["method"] != "GET":
        return None
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    if not path.startswith(PREFIX):
        return None
    name, sep, tail = path[len(PREFIX) :].partition("/")
    endpoint = ENDPOINTS.get(tail) if sep and name else None
    if endpoint is not None:
        scope["path_params"] = {"name": name}
        scope["route"] = ROUTES[tail]
    return endpoint
