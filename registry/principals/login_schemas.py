"""Request and response bodies of the console-login API (``/api/v1/principals/{name}/logins``)."""

from __future__ import annotations

from pydantic import Field

from registry.schemas import Read, Strict


class LoginAdd(Strict):
    subject: str = Field(
        min_length=1,
        max_length=256,
        description="The person's value of the configured subject claim "
        "(REGISTRY_CONSOLE_OIDC__SUBJECT_CLAIM: `sub` by default, or e.g. `email`).",
    )
    issuer: str | None = Field(
        None,
        max_length=512,
        description="The OpenID Connect issuer; default: the one the console signs in with.",
    )


class LoginRead(Read):
    principal: str
    issuer: str
    subject: str


class LoginList(Read):
    items: list[LoginRead]
