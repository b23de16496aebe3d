"""Swagger UI and ReDoc for signed-in console users: ``/docs`` redirects to ``/console/docs``
(Swagger UI), ``/redoc`` to ``/console/redoc``. Their assets come from the pinned
``fastapi-offline`` wheel (MIT; Swagger UI 5, which reads the OpenAPI 3.1 document FastAPI
writes, and ReDoc), served by this app, never from a CDN; the OpenAPI document from
``/console/openapi.json`` (for the session; the API's own ``/openapi.json`` stays behind a
bearer token). "Try it out" calls the API, which needs a token: the Authorize button takes
one."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from registry.console.web import DOCS_CSP, SECURITY_HEADERS, error_page, page, redirect
from registry.errors import RegistryError

router = APIRouter(include_in_schema=False)
_ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
}
_PACKAGE = "fastapi_offline"


@cache
def _asset(name: str) -> bytes:
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or spec.origin is None:
        raise RuntimeError("fastapi-offline (a dependency) is not installed")
    return (Path(spec.origin).parent / "static" / name).read_bytes()


@router.get("/docs")
def docs_redirect() -> Response:
    return redirect("/console/docs")


@router.get("/redoc")
def redoc_redirect() -> Response:
    return redirect("/console/redoc")


@router.get("/console/docs")
def docs(request: Request) -> Response:
    return _viewer(request, "swagger")


@router.get("/console/redoc")
def redoc(request: Request) -> Response:
    return _viewer(request, "redoc")


def _viewer(request: Request, kind: str) -> Response:
    try:
        with page(request) as p:
            return p.render("docs.html", kind=kind, csp=DOCS_CSP)
    except RegistryError as exc:
        return error_page(request, exc)


@router.get("/console/openapi.json")
def openapi(request: Request) -> Response:
    try:
        with page(request):
            pass
    except RegistryError as exc:
        return error_page(request, exc)
    return JSONResponse(request.app.openapi(), headers=SECURITY_HEADERS)


@router.get("/console/swagger/{name}")
def asset(name: str) -> Response:
    if name not in _ASSETS:
        return Response(status_code=404)
    return Response(
        _asset(name),
        media_type=_ASSETS[name],
        headers={"Cache-Control": "public, max-age=86400"},
    )
