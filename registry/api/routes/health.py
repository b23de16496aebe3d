"""Liveness and readiness: the only routes that need no token.

Both are ``async``: they never wait for a worker thread, so they answer while every thread is
busy (a slow dependency). ``/readyz`` answers within ``server.readiness_timeout_s`` and names
each dependency's state (``registry.health``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from registry.health import ReadinessProbe

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (no dependencies checked)."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Database reachable at the right schema with no recent disk-full / resource failure,
    artifact store reachable, local disks not full; ``timeout`` for a check still running."""
    probe: ReadinessProbe = request.app.state.readiness
    checks = await probe.run()
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks},
        status_code=200 if ok else 503,
        headers=None if ok else {"Retry-After": "5"},
    )
