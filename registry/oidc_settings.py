"""OpenID Connect settings: CI trusted publishing (``REGISTRY_OIDC__*``) and the web console's
sign-in (``REGISTRY_CONSOLE_OIDC__*``; unset ``issuer``: API-token sign-in only).

Kept out of ``registry/settings.py`` (one field each there) to keep it small.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, model_validator


class OidcSettings(BaseModel):
    allow_insecure_loopback: bool = Field(
        False,
        description="Accept http:// issuers on loopback (tests, local dev); never in production.",
    )
    leeway_s: int = Field(30, ge=0, le=300, description="Clock leeway for exp/iat/nbf.")
    jwks_cache_s: int = Field(3600, ge=0, description="How long fetched JWKS keys are trusted.")
    jwks_refresh_min_s: float = Field(
        60.0, ge=0, description="An unknown kid refreshes the JWKS at most this often."
    )
    jwks_timeout_s: float = Field(
        3.0, gt=0, description="Bound on one JWKS / discovery fetch (a slow issuer)."
    )
    token_ttl_s: int = Field(
        900, ge=60, le=24 * 3600, description="Lifetime of a registry token minted for CI."
    )
    max_token_age_s: int = Field(
        3600, ge=60, description="Refuse OIDC tokens whose iat is older than this."
    )


_ISSUER_HELP = (
    "OpenID Connect issuer people sign in with (https://…; http:// on loopback only with "
    "REGISTRY_OIDC__ALLOW_INSECURE_LOOPBACK). Unset: API-token sign-in only."
)


class ConsoleOidcSettings(BaseModel):
    issuer: str | None = Field(None, max_length=512, description=_ISSUER_HELP)
    client_id: str = Field(
        "", max_length=256, description="The console's client id at the issuer (also the audience)."
    )
    client_secret: SecretStr | None = Field(
        None,
        description="Client secret (client_secret_basic) of a confidential client; unset: a "
        "public client that proves itself with PKCE only.",
    )
    redirect_url: str | None = Field(
        None,
        max_length=1024,
        description="The callback as registered at the issuer, e.g. "
        "https://registry.example.com/console/oidc/callback (never taken from the request's "
        "Host header).",
    )
    scopes: str = Field("openid email profile", max_length=256, description="Scopes asked for.")
    subject_claim: str = Field(
        "sub",
        pattern=r"^[A-Za-z0-9_:.-]{1,64}$",
        description="ID-token claim that names the person; linked to a principal with "
        "`principals logins add`. `email` is used only when `email_verified` is true.",
    )
    label: str = Field(
        "Sign in with single sign-on", max_length=80, description="Text of the sign-in button."
    )
    timeout_s: float = Field(
        5.0, gt=0, le=60, description="Bound on one discovery / token request to the issuer."
    )
    login_ttl_s: int = Field(
        600, ge=60, le=3600, description="How long a started sign-in may take at the issuer."
    )

    @model_validator(mode="after")
    def _complete(self) -> ConsoleOidcSettings:
        if self.issuer is not None and (not self.client_id or not self.redirect_url):
            raise ValueError(
                "REGISTRY_CONSOLE_OIDC__ISSUER needs REGISTRY_CONSOLE_OIDC__CLIENT_ID and "
                "REGISTRY_CONSOLE_OIDC__REDIRECT_URL"
            )
        if "openid" not in self.scopes.split():
            raise ValueError("REGISTRY_CONSOLE_OIDC__SCOPES must include openid")
        return self

    @property
    def enabled(self) -> bool:
        return self.issuer is not None
