"""What every console page shares: templates, the signed-in caller, CSRF, security headers.

Every response carries a strict Content-Security-Policy (scripts, styles and images from this
origin only, no inline script, no framing, forms post only here), ``X-Frame-Options: DENY``,
``Referrer-Policy: same-origin`` and ``Cache-Control: no-store`` (pages show governed data).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy.orm import Session

from registry.access.actor import Actor
from registry.access.policy_sets import ActivePolicies, PolicyHolder
from registry.access.subjects import load_actor
from registry.api.deps import request_unit
from registry.console import sessions
from registry.console.sessions import COOKIE, SignedIn
from registry.errors import BadRequest, CsrfFailed, RegistryError, Unauthenticated

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
#: The API documentation pages only: ReDoc injects its styles at run time (styled-components), so
#: they may add inline styles; scripts stay this origin's only.
DOCS_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
MAX_FORM_FIELDS = 16

_env = Environment(
    loader=PackageLoader("registry.console", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass
class Page:
    """A request's unit of work as the console sees it: the session, the signed-in caller
    (``signed``), the caller as the policy engine sees it (``actor``) and the active policies."""

    request: Request
    session: Session
    signed: SignedIn
    actor: Actor
    policies: ActivePolicies

    def render(
        self, template: str, status_code: int = 200, *, csp: str = CSP, **context: Any
    ) -> HTMLResponse:
        return render(self.request, template, status_code, signed=self.signed, csp=csp, **context)


def render(
    request: Request,
    template: str,
    status_code: int = 200,
    *,
    signed: SignedIn | None = None,
    csp: str = CSP,
    **context: Any,
) -> HTMLResponse:
    html = _env.get_template(template).render(
        signed=signed, csrf=signed.csrf if signed else "", path=request.url.path, **context
    )
    headers = {**SECURITY_HEADERS, "Content-Security-Policy": csp}
    return HTMLResponse(html, status_code=status_code, headers=headers)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


def set_session_cookie(response: Response, request: Request, key: str, expires: datetime) -> None:
    """The console session's cookie: HttpOnly, SameSite=Strict, Secure behind TLS, under
    ``/console``, no longer than the session lives."""
    response.set_cookie(
        COOKIE,
        key,
        expires=expires,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def to_sign_in(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect("/console/sign-in?" + urllib.parse.urlencode({"next": target}))


def safe_next(value: str | None) -> str:
    """Only a console path is a redirect target after sign-in (no open redirect)."""
    if value and value.startswith("/console/") and "//" not in value and "\\" not in value:
        return value
    return "/console/inbox"


@contextmanager
def page(request: Request, *, write: bool = False) -> Iterator[Page]:
    """A unit of work (the API's: a refused write's audit event is recorded as there) with the
    caller signed in by the session cookie; ``Unauthenticated`` when there is no live session."""
    with request_unit(request, write=write) as session:
        signed = sessions.lookup(session, request.cookies.get(COOKIE))
        holder: PolicyHolder = request.app.state.policies
        policies = holder.current(session)
        actor = load_actor(
            session,
            signed.principal,
            policies.authorizer,
            getattr(request.state, "request_id", None),
        )
        yield Page(request, session, signed, actor, policies)


async def form(request: Request) -> dict[str, str]:
    """An urlencoded form (its size was bounded by the request guard), first value per field."""
    body = (await request.body()).decode("utf-8", errors="replace")
    try:
        pairs = urllib.parse.parse_qsl(body, max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        raise BadRequest("too many form fields", context={"limit": MAX_FORM_FIELDS}) from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        fields.setdefault(key, value)
    return fields


def check_origin(request: Request) -> None:
    """Refuse a form posted from another origin (sign-in included: no login CSRF)."""
    origin = request.headers.get("origin")
    host = request.headers.get("host", "")
    if origin is not None and urllib.parse.urlsplit(origin).netloc != host:
        raise CsrfFailed("the form was posted from another origin")


def check_csrf(request: Request, fields: Mapping[str, str]) -> None:
    """Refuse a form without this session's CSRF token, or posted from another origin."""
    check_origin(request)
    if not sessions.csrf_ok(request.cookies.get(COOKIE) or "", fields.get("csrf")):
        raise CsrfFailed("the form's CSRF token is missing or wrong; reload the page")


def error_page(request: Request, exc: RegistryError, signed: SignedIn | None = None) -> Response:
    """A refusal as a page: the stable error code, its message, the HTTP status of the API."""
    if isinstance(exc, Unauthenticated) and request.method == "GET":
        return to_sign_in(request)
    return render(request, "error.html", exc.status_code, signed=signed, error=exc)
