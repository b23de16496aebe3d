"""Console pages and actions: sign-in, the approver inbox, a promotion with Approve / Reject,
"What served?", and the audit log with chain verification.

Each handler opens the API's unit of work (:func:`registry.console.web.page`) and calls the same
service as the matching API route with the signed-in caller's ``Actor``: one authorization and
audit path. Forms post urlencoded bodies with the session's CSRF token; every POST answers with
a redirect (post/redirect/get) or an error page carrying the API's error code and status.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response
from pydantic import TypeAdapter

from registry.access.actor import audit_resource
from registry.api.deps import request_unit
from registry.api.params import is_rfc3339
from registry.audit import service as audit
from registry.audit.verify import VerifyResult, verify
from registry.console import sessions
from registry.console.inbox import inbox_rows, promotion_detail
from registry.console.oidc_pages import sso_label
from registry.console.sessions import COOKIE
from registry.console.timeline import timeline
from registry.console.web import (
    Page,
    check_csrf,
    check_origin,
    error_page,
    form,
    page,
    redirect,
    render,
    safe_next,
    set_session_cookie,
)
from registry.deployments import service as deployments
from registry.errors import BadRequest, PromotionNotFound, RegistryError
from registry.promotions import service as promotions
from registry.traffic import moves
from registry.traffic.served import served_at

router = APIRouter(prefix="/console", include_in_schema=False)
_DATETIME = TypeAdapter(datetime)
_Text = Annotated[str | None, Query(max_length=300)]


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


_STATIC = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "api-docs.js": "text/javascript; charset=utf-8",
    # htmx 2.0.8 (0BSD, htmx.LICENSE beside it), vendored: no CDN at run time.
    "htmx.min.js": "text/javascript; charset=utf-8",
}


@router.get("")
def home() -> Response:
    return redirect("/console/inbox")


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The console's own assets (shipped in the package; nothing from a CDN)."""
    if name not in _STATIC:
        return Response(status_code=404)
    body = resources.files("registry.console").joinpath("static", name).read_bytes()
    return Response(
        body, media_type=_STATIC[name], headers={"Cache-Control": "public, max-age=3600"}
    )


@router.get("/sign-in")
def sign_in_form(request: Request, next: _Text = None) -> Response:
    return render(request, "sign_in.html", next=safe_next(next), sso=sso_label(request))


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    """Exchange a pasted API token for a session cookie (HttpOnly, SameSite=Strict, Secure
    behind TLS, no longer than the token lives)."""
    fields = await form(request)
    try:
        check_origin(request)
        with request_unit(request, write=True) as session:
            key, expires = sessions.sign_in(
                session,
                token=fields.get("token", "").strip(),
                ttl_s=request.app.state.settings.server.console_session_ttl_s,
                request_id=_request_id(request),
            )
    except RegistryError as exc:
        return render(
            request,
            "sign_in.html",
            exc.status_code,
            error=exc,
            next=safe_next(fields.get("next")),
            sso=sso_label(request),
        )
    response = redirect(safe_next(fields.get("next")))
    set_session_cookie(response, request, key, expires)
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    fields = await form(request)
    try:
        check_csrf(request, fields)
        with request_unit(request, write=True) as session:
            sessions.sign_out(
                session, request.cookies.get(COOKIE) or "", request_id=_request_id(request)
            )
    except RegistryError as exc:
        return error_page(request, exc)
    response = redirect("/console/sign-in")
    response.delete_cookie(COOKIE, path="/console")
    return response


@router.get("/inbox")
def inbox(request: Request) -> Response:
    """Pending promotions the caller may approve (Cedar decides), newest first."""
    try:
        with page(request) as p:
            return p.render("inbox.html", rows=inbox_rows(p))
    except RegistryError as exc:
        return error_page(request, exc)


def _promotion_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise PromotionNotFound("no such promotion request", context={"id": value}) from None


@router.get("/promotions/{promotion_id}")
def promotion(request: Request, promotion_id: Annotated[str, Path(max_length=64)]) -> Response:
    try:
        with page(request) as p:
            return p.render("promotion.html", **promotion_detail(p, _promotion_id(promotion_id)))
    except RegistryError as exc:
        return error_page(request, exc)


@router.post("/promotions/{promotion_id}/approve")
async def approve(request: Request, promotion_id: Annotated[str, Path(max_length=64)]) -> Response:
    """Approve with the plan digest the page showed (409 if the plan changed since)."""
    fields = await form(request)
    try:
        check_csrf(request, fields)
        with page(request, write=True) as p:
            promotions.approve(
                p.session,
                actor=p.actor,
                policies=p.policies,
                promotion_id=_promotion_id(promotion_id),
                comment=fields.get("comment", "")[:1000],
                plan_digest=fields.get("plan_digest") or None,
            )
    except RegistryError as exc:
        return error_page(request, exc)
    return redirect(f"/console/promotions/{promotion_id}")


@router.post("/promotions/{promotion_id}/reject")
async def reject(request: Request, promotion_id: Annotated[str, Path(max_length=64)]) -> Response:
    fields = await form(request)
    try:
        check_csrf(request, fields)
        reason = fields.get("reason", "").strip()[:1000]
        if not reason:
            raise BadRequest("a rejection needs a reason", context={"field": "reason"})
        with page(request, write=True) as p:
            promotions.reject(
                p.session, actor=p.actor, promotion_id=_promotion_id(promotion_id), reason=reason
            )
    except RegistryError as exc:
        return error_page(request, exc)
    return redirect(f"/console/promotions/{promotion_id}")


@router.get("/deployments")
def deployment_list(request: Request) -> Response:
    try:
        with page(request) as p:
            rows = deployments.list_deployments(p.session, actor=p.actor, after=None, limit=200)
            return p.render("deployments.html", deployments=rows)
    except RegistryError as exc:
        return error_page(request, exc)


@router.get("/deployments/{name}")
def deployment(request: Request, name: Annotated[str, Path(max_length=64)]) -> Response:
    """The timeline: share over time with rollbacks marked, per-arm serving figures, the
    controller's decisions with their evidence, the experiment readout, Roll back."""
    try:
        with page(request) as p:
            return p.render("deployment.html", **timeline(p, name))
    except RegistryError as exc:
        return error_page(request, exc)


@router.post("/deployments/{name}/rollback")
async def rollback(request: Request, name: Annotated[str, Path(max_length=64)]) -> Response:
    """Roll back (the API's compare-and-set: the revision the page showed, else 412)."""
    fields = await form(request)
    try:
        check_csrf(request, fields)
        if fields.get("confirm") != "yes":
            raise BadRequest("confirm the rollback", context={"field": "confirm"})
        expected = fields.get("expected_revision", "")
        if not expected.isdigit() or len(expected) > 10:
            raise BadRequest("expected_revision must be a number", context={"field": "expected"})
        with page(request, write=True) as p:
            moves.rollback(
                p.session, actor=p.actor, name=name, expected=int(expected), to_revision=None
            )
        request.app.state.metrics.rollbacks.labels(kind="manual").inc()
    except RegistryError as exc:
        return error_page(request, exc)
    return redirect(f"/console/deployments/{name}")


@router.get("/served")
def served(
    request: Request,
    deployment: Annotated[str | None, Query(max_length=64)] = None,
    at: Annotated[str | None, Query(max_length=64)] = None,
    key: Annotated[str | None, Query(max_length=1024)] = None,
) -> Response:
    """Deployment + time (+ key) → what served, as ``audit served`` answers it."""
    try:
        with page(request) as p:
            answer = None
            if deployment and at:
                answer = jsonable_encoder(
                    served_at(
                        p.session,
                        actor=p.actor,
                        deployment=deployment,
                        at=_time(at),
                        key=key or None,
                    )
                )
            return p.render("served.html", deployment=deployment, at=at, key=key, answer=answer)
    except RegistryError as exc:
        return error_page(request, exc)


@router.get("/audit/verify")
def audit_verify(request: Request) -> Response:
    """The chain verification alone, as a fragment the audit page swaps in (htmx)."""
    try:
        with page(request) as p:
            p.actor.require("read_audit", audit_resource())
            return p.render("verify_result.html", result=_verify(p))
    except RegistryError as exc:
        return error_page(request, exc)


def _verify(p: Page) -> VerifyResult:
    """What ``audit verify`` computes: the hash chain and every checkpoint against the key."""
    return verify(
        p.session,
        p.request.app.state.store,
        public_keys=[p.request.app.state.audit_key.public_key()],
    )


def _time(value: str, field: str = "at") -> datetime:
    """A form's time, by the API's rule (RFC 3339 with a zone: ``Rfc3339``)."""
    if not is_rfc3339(value):
        raise BadRequest(
            f"{field} must be an RFC 3339 time with a zone (e.g. 2026-12-05T10:00:00Z)",
            context={"field": field},
        )
    return _DATETIME.validate_python(value)  # pydantic's reading, as for the API's query


@router.get("/audit")
def audit_log(
    request: Request,
    actor: Annotated[str | None, Query(max_length=128)] = None,
    action: _Text = None,
    resource: _Text = None,
    since: Annotated[str | None, Query(max_length=64)] = None,
    until: Annotated[str | None, Query(max_length=64)] = None,
    after: Annotated[int | None, Query(ge=0)] = None,
    check: bool = False,
) -> Response:
    """The audit log in sequence order (filters as the API's), and ``check`` runs the chain
    verification ``audit verify`` runs."""
    try:
        with page(request) as p:
            p.actor.require("read_audit", audit_resource())
            events = audit.log(
                p.session,
                actor=actor or None,
                action=action or None,
                resource=resource or None,
                since=_time(since, "since") if since else None,
                until=_time(until, "until") if until else None,
                after_seq=after,
                limit=101,
            )
            result = _verify(p) if check else None
            return p.render(
                "audit.html",
                events=events[:100],
                more=events[99].seq if len(events) > 100 else None,
                filters={
                    "actor": actor,
                    "action": action,
                    "resource": resource,
                    "since": since,
                    "until": until,
                },
                result=result,
            )
    except RegistryError as exc:
        return error_page(request, exc)
