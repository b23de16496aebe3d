"""Console sign-in through the organisation's OpenID Connect issuer (``REGISTRY_CONSOLE_OIDC__*``).

``/console/oidc/start`` sends the browser to the issuer with a fresh sign-in cookie;
``/console/oidc/callback`` checks the answer against that cookie, redeems the code, verifies the
ID token, looks up the principal an admin linked to the person (``principals logins add``) and
opens a console session for it, audited as ``console.sign_in`` with ``via: oidc``.

The session cookie is SameSite=Strict, which a browser withholds on the first page after a
cross-site redirect chain (the issuer → the callback). So the callback answers with a small page
that continues to the console itself (same-site), instead of a redirect.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from registry.api.deps import request_unit
from registry.console import sessions
from registry.console.oidc_login import COOKIE as LOGIN_COOKIE
from registry.console.oidc_login import OidcLogin
from registry.console.web import redirect, render, safe_next, set_session_cookie
from registry.errors import OidcSignInFailed, RegistryError
from registry.principals.logins import principal_of_login

router = APIRouter(prefix="/console/oidc", include_in_schema=False)
_Param = Annotated[str | None, Query(max_length=4096)]


def configured(request: Request) -> OidcLogin | None:
    login: OidcLogin | None = getattr(request.app.state, "console_oidc", None)
    return login


def _required(request: Request) -> OidcLogin:
    """The configured sign-in, or ``oidc_sign_in_failed`` / ``not_configured``."""
    login = configured(request)
    if login is None:
        raise OidcSignInFailed(
            "single sign-on is not configured", context={"reason": "not_configured"}
        )
    return login


def sso_label(request: Request) -> str | None:
    """The sign-in button's text when OIDC sign-in is configured."""
    login = configured(request)
    return login.settings.label if login is not None else None


def _refused(request: Request, exc: RegistryError, next_path: str) -> Response:
    response = render(
        request,
        "sign_in.html",
        exc.status_code,
        error=exc,
        next=safe_next(next_path),
        sso=sso_label(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path="/console/oidc")
    return response


@router.get("/start")
def start(request: Request, next: Annotated[str | None, Query(max_length=300)] = None) -> Response:
    try:
        login = _required(request)
        started = login.begin(safe_next(next))
    except RegistryError as exc:
        return _refused(request, exc, next or "")
    response = redirect(started.authorize_url)
    response.set_cookie(
        LOGIN_COOKIE,
        started.cookie,
        max_age=login.settings.login_ttl_s,
        path="/console/oidc",
        httponly=True,
        # Lax, not Strict: the callback is a top-level navigation coming from the issuer.
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/callback")
def callback(
    request: Request,
    code: _Param = None,
    state: _Param = None,
    error: _Param = None,
) -> Response:
    params = {k: v for k, v in (("code", code), ("state", state), ("error", error)) if v}
    next_path = "/console/inbox"
    try:
        person = _required(request).finish(request.cookies.get(LOGIN_COOKIE), params)
        next_path = safe_next(person.next)
        with request_unit(request, write=True) as session:
            principal_id = principal_of_login(session, issuer=person.issuer, subject=person.subject)
            if principal_id is None:
                raise OidcSignInFailed(
                    "you signed in at the identity provider, but no principal is linked to "
                    "you here: ask an admin to run `adapter-registry principals logins add`",
                    context={"reason": "not_linked", "subject": person.subject},
                )
            key, expires = sessions.sign_in_as(
                session,
                principal_id=principal_id,
                ttl_s=request.app.state.settings.server.console_session_ttl_s,
                request_id=getattr(request.state, "request_id", None),
                via={"via": "oidc", "issuer": person.issuer, "subject": person.subject},
            )
    except RegistryError as exc:
        return _refused(request, exc, next_path)
    response = render(request, "signed_in.html", next=next_path)
    set_session_cookie(response, request, key, expires)
    response.delete_cookie(LOGIN_COOKIE, path="/console/oidc")
    return response
