"""OpenID Connect logins of principals: which person at the issuer may sign in to the web
console as which principal (admin). The sign-in itself is the console's (``/console/oidc``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Response, status

from registry.api.deps import ActorDep, SessionDep, SettingsDep, WriteDep
from registry.api.params import PrincipalPath
from registry.api.routes._common import authenticated_router, responses
from registry.errors import (
    BadRequest,
    ConsoleLoginExists,
    ConsoleLoginNotFound,
    InvalidName,
    PolicyDenied,
    PrincipalNotFound,
)
from registry.principals import logins
from registry.principals.login_schemas import LoginAdd, LoginList, LoginRead

router = authenticated_router(prefix="/api/v1", tags=["principals"])


def _read(login: logins.Login) -> LoginRead:
    return LoginRead(principal=login.principal, issuer=login.issuer, subject=login.subject)


@router.post(
    "/principals/{name}/logins",
    status_code=status.HTTP_201_CREATED,
    response_model=LoginRead,
    responses=responses(
        InvalidName, PrincipalNotFound, ConsoleLoginExists, PolicyDenied, BadRequest
    ),
)
def add_login(name: PrincipalPath, body: LoginAdd, ctx: WriteDep) -> object:
    """Let a person at the OpenID Connect issuer sign in to the console as this principal."""
    issuer = body.issuer or ctx.settings.console_oidc.issuer
    return ctx.idempotent(
        body,
        lambda: _read(
            logins.link(
                ctx.session, actor=ctx.actor, principal=name, subject=body.subject, issuer=issuer
            )
        ),
        status_code=201,
    )


@router.get(
    "/principals/{name}/logins",
    response_model=LoginList,
    responses=responses(InvalidName, PrincipalNotFound, PolicyDenied),
)
def list_logins(name: PrincipalPath, actor: ActorDep, session: SessionDep) -> LoginList:
    """The OpenID Connect logins linked to this principal."""
    return LoginList(
        items=[_read(x) for x in logins.list_logins(session, actor=actor, principal=name)]
    )


@router.delete(
    "/principals/{name}/logins",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(
        InvalidName, PrincipalNotFound, ConsoleLoginNotFound, PolicyDenied, BadRequest
    ),
)
def remove_login(
    name: PrincipalPath,
    subject: Annotated[str, Query(min_length=1, max_length=256)],
    ctx: WriteDep,
    settings: SettingsDep,
    issuer: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    """Unlink a login: that person can no longer sign in to the console as this principal
    (sessions already open end with their principal's other rules: sign-out, expiry)."""
    logins.unlink(
        ctx.session,
        actor=ctx.actor,
        principal=name,
        subject=subject,
        issuer=issuer or settings.console_oidc.issuer,
    )
    return Response(status_code=204)
