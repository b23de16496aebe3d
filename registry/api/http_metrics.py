"""Count and time every HTTP request by route template, method and status class.

The outermost middleware (its time covers every layer, the request guard and the serving
fast path included). The route label is the matched route's path template
(``/api/v1/adapters/{namespace}/{name}``), never the raw path, so label values are bounded:
Starlette's router leaves the matched route in ``scope["route"]`` (the serving fast path sets
it too). A request answered before routing (401 from the request guard, 413, 503 at the
concurrency limit) is matched against the routes afterwards, only then; a path that matches no
route is labelled ``<unmatched>``. Methods outside the standard set are labelled ``other``.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry.metrics import UNMATCHED, Metrics

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.observe = metrics.http.observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        status = 500  # an exception before the response started becomes a 500 outside us

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            template = getattr(scope.get("route"), "path", None)
            if template.__class__ is not str or not template:
                template = route_template(scope)
            method = scope["method"]
            self.observe(
                template,
                method if method in METHODS else "other",
                status,
                perf_counter() - started,
            )


def route_template(scope: Scope) -> str:
    """The path template of the route that answered ``scope`` (see the module docstring)."""
    route: Any = scope.get("route")
    if route is None:
        route = _match(scope)
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


def _match(scope: Scope) -> Any:
    """The route the router would pick for ``scope`` (a full match first, else one that
    matches the path but not the method), or None."""
    partial = None
    for route in _flat_routes(scope.get("app")):
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
        if match is Match.PARTIAL and partial is None:
            partial = route
    return partial


def _flat_routes(app: Any) -> list[Any]:
    """The app's routes in matching order, included routers expanded (FastAPI keeps each
    ``include_router`` as one entry whose ``matches`` hides the route it matched). Computed
    once per app."""
    cached: list[Any] | None = getattr(app, "_registry_flat_routes", None)
    if cached is None:
        cached = []
        pending = list(getattr(getattr(app, "router", None), "routes", ()))
        while pending:
            route = pending.pop(0)
            inner = getattr(route, "original_router", None)
            if inner is not None:
                pending[:0] = list(inner.routes)
            else:
                cached.append(route)
        if app is not None:
            app._registry_flat_routes = cached
    return cached
