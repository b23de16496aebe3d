"""Exception handlers: every error leaves as ``{"error", "detail", "context"}``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from registry.db.failures import outage_reason
from registry.errors import DatabaseUnavailable, RegistryError

log = logging.getLogger("registry.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _body(code: str, detail: str, context: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": code, "detail": detail, "context": context or {}}


def _unavailable(detail: str, reason: str) -> JSONResponse:
    return JSONResponse(
        _body(DatabaseUnavailable.code, detail, {"reason": reason}),
        status_code=503,
        headers={"Retry-After": "5" if reason == "disk_full" else "1"},
    )


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path. Starlette's 405 names only the methods of
    the first route that matched the path, while GET and POST of one path are two routes.
    (Asks each route whether it would take the request with that method: included routers
    answer for their own routes.)"""
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RegistryError)
    async def _registry_error(_request: Request, exc: RegistryError) -> JSONResponse:
        headers = None
        if exc.status_code == 503:
            retry_after = exc.context.get("retry_after_s", 1)
            headers = {"Retry-After": str(retry_after if isinstance(retry_after, int) else 1)}
        if exc.status_code == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        if exc.status_code == 416 and isinstance(exc.context.get("size"), int):
            headers = {"Content-Range": f"bytes */{exc.context['size']}"}
        return JSONResponse(
            jsonable_encoder(exc.to_body()), status_code=exc.status_code, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        return JSONResponse(
            _body("invalid_request", "the request does not match the schema", {"errors": errors}),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
        return JSONResponse(
            _body(code, str(exc.detail)), status_code=exc.status_code, headers=headers
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(_request: Request, exc: IntegrityError) -> JSONResponse:
        # A unique/foreign-key race that a service did not turn into a domain error.
        log.warning("integrity error escaped a service: %s", exc.orig)
        return JSONResponse(
            _body("conflict", "the change conflicts with the current state"), status_code=409
        )

    # Any driver error, not only OperationalError: a connection that died under a failover can
    # surface as InterfaceError ("the connection is closed") and a session left on a demoted
    # node as InternalError (read-only transaction); both are outages (503), not bugs.
    @app.exception_handler(DBAPIError)
    async def _operational(request: Request, exc: DBAPIError) -> JSONResponse:
        reason = outage_reason(exc)
        if reason is None:
            log.exception("database error", exc_info=exc)
            return JSONResponse(_body("internal", "internal error"), status_code=500)
        health = getattr(request.app.state, "health", None)
        if health is not None:
            health.database_failed(reason)
        log.warning("database unavailable (%s): %s", reason, exc.orig)
        return _unavailable("the database is unavailable; retry", reason)

    @app.exception_handler(SATimeoutError)
    async def _pool_timeout(_request: Request, exc: SATimeoutError) -> JSONResponse:
        # Every pooled connection is busy (a slow database holds them): shed load, don't queue.
        log.warning("database pool exhausted: %s", exc)
        return _unavailable("no database connection is free; retry", "pool_exhausted")

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(_body("internal", "internal error"), status_code=500)


Handler = Callable[[Request, Exception], Awaitable[Response]]


def handler_for(request: Request, exc: Exception) -> Handler | None:
    """The application's exception handler for ``exc`` (looked up along the MRO, as Starlette
    does), for middleware that runs outside FastAPI's exception middleware."""
    handlers = request.app.exception_handlers
    for cls in type(exc).__mro__:
        if cls in handlers:
            handler: Handler = handlers[cls]
            return handler
    return None
