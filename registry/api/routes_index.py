"""Flatten the app's routes (FastAPI ≥ 0.16x keeps included routers as branches)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI


@dataclass(frozen=True, slots=True)
class RouteInfo:
    path: str
    methods: frozenset[str]
    name: str


def _walk(routes: list[Any]) -> list[RouteInfo]:
    out: list[RouteInfo] = []
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if callable(contexts):
            out.extend(_walk(list(contexts())))
            continue
        path = getattr(route, "path", None)
        if path is None:
            continue
        methods = frozenset(getattr(route, "methods", None) or ())
        out.append(RouteInfo(path, methods, str(getattr(route, "name", ""))))
    return out


def all_routes(app: FastAPI) -> list[RouteInfo]:
    """Every (path, methods) the app serves, included routers flattened."""
    return _walk(list(app.routes))
