"""Liveness and readiness: the only routes that need no token."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from registry.db.session import unit_of_work
from registry.errors import RegistryError
from registry.health import check_database

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up (no dependencies checked)."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """Database reachable at the right schema and artifact store reachable."""
    checks: dict[str, str] = {}
    try:
        with unit_of_work(request.app.state.sessions.read) as session:
            check_database(session, expected_heads=request.app.state.schema_heads)
        checks["database"] = "ok"
    except Exception as exc:  # readiness reports, it does not raise
        checks["database"] = exc.code if isinstance(exc, RegistryError) else "unreachable"
    try:
        request.app.state.store.check()
        checks["storage"] = "ok"
    except Exception as exc:
        checks["storage"] = exc.code if isinstance(exc, RegistryError) else "unreachable"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )
