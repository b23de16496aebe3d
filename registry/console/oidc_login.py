"""The console's OpenID Connect sign-in: authorization code flow with PKCE (RFC 7636), state and
nonce, for people (CI jobs use trusted publishing instead).

Nothing is stored on the server between the two legs. ``begin`` draws a 256-bit key that goes
into a short-lived HttpOnly cookie of the browser that started the sign-in; ``state``, ``nonce``
and the PKCE verifier are HMACs of that key. ``finish`` recomputes them from the cookie, so a
callback from another browser (login CSRF), a replayed code or a swapped ID token does not fit.
The ID token comes straight from the token endpoint (server to server) and is still verified like
any token: RS256 by the issuer's JWKS, issuer, audience (the client id), times, nonce.

Pure of FastAPI and of the database: the pages (``oidc_pages``) link the subject to a principal.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from registry.errors import OidcProviderUnavailable, OidcSignInFailed
from registry.oidc.jwks import JwksFetchError, fetch_json, is_allowed_issuer_url
from registry.oidc.verifier import OidcVerifier
from registry.oidc_settings import ConsoleOidcSettings

COOKIE = "ar_console_oidc"
_KEY_CHARS = 43  # token_urlsafe(32)
_MAX_COOKIE = 1024
_MAX_CODE = 2048
_DISCOVERY_CACHE_S = 3600.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _derive(key: str, purpose: bytes) -> bytes:
    return hmac.new(key.encode(), b"console-oidc:" + purpose, hashlib.sha256).digest()


def _failed(reason: str, detail: str, **context: Any) -> OidcSignInFailed:
    return OidcSignInFailed(detail, context={"reason": reason, **context})


@dataclass(frozen=True, slots=True)
class Started:
    """Where to send the browser, and the cookie that binds the callback to it."""

    authorize_url: str
    cookie: str


@dataclass(frozen=True, slots=True)
class Finished:
    """A verified person at the issuer, and the console path to continue to."""

    issuer: str
    subject: str
    next: str


@dataclass(frozen=True, slots=True)
class _Endpoints:
    authorize: str
    token: str


class OidcLogin:
    """One configured issuer. Thread-safe; the discovery document is cached for an hour."""

    def __init__(
        self,
        settings: ConsoleOidcSettings,
        verifier: OidcVerifier,
        *,
        allow_insecure_loopback: bool,
        client: httpx.Client | None = None,
    ) -> None:
        assert settings.issuer is not None
        assert settings.redirect_url is not None
        self.settings = settings
        self.issuer: str = settings.issuer
        self._redirect_url: str = settings.redirect_url
        self._verifier = verifier
        self._loopback = allow_insecure_loopback
        self._client = client or httpx.Client(follow_redirects=False)
        self._lock = threading.Lock()
        self._endpoints: _Endpoints | None = None
        self._discovered_at = 0.0

    def close(self) -> None:
        self._client.close()

    # --- the two legs ----------------------------------------------------------------------

    def begin(self, next_path: str) -> Started:
        """The issuer's authorization URL for a new sign-in, and its cookie."""
        endpoints = self._discover()
        key = secrets.token_urlsafe(32)
        verifier = _b64(_derive(key, b"pkce"))
        query = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": self._redirect_url,
            "scope": self.settings.scopes,
            "state": _b64(_derive(key, b"state")),
            "nonce": _b64(_derive(key, b"nonce")),
            "code_challenge": _b64(hashlib.sha256(verifier.encode()).digest()),
            "code_challenge_method": "S256",
        }
        sep = "&" if urllib.parse.urlsplit(endpoints.authorize).query else "?"
        return Started(
            authorize_url=endpoints.authorize + sep + urllib.parse.urlencode(query),
            cookie=f"{key}.{_b64(next_path.encode())}",
        )

    def finish(self, cookie: str | None, params: Mapping[str, str]) -> Finished:
        """Check the callback against the cookie, redeem the code, verify the ID token."""
        if "error" in params:
            raise _failed(
                "provider_error",
                "the identity provider did not sign you in",
                error=params["error"][:64],
            )
        key, next_path = _parse_cookie(cookie)
        if not hmac.compare_digest(
            _b64(_derive(key, b"state")).encode(), params.get("state", "").encode()
        ):
            raise _failed("state_mismatch", "this sign-in was not started by this browser")
        code = params.get("code", "")
        if not code or len(code) > _MAX_CODE or not code.isprintable():
            raise _failed("provider_error", "the identity provider sent no authorization code")
        id_token = self._redeem(code, _b64(_derive(key, b"pkce")))
        claims = self._verifier.verify(
            id_token,
            issuer=self.issuer,
            audience=self.settings.client_id,
            id_token=True,
        )
        if not hmac.compare_digest(
            str(claims.get("nonce", "")).encode(), _b64(_derive(key, b"nonce")).encode()
        ):
            raise _failed("nonce_mismatch", "the ID token was issued for another sign-in")
        return Finished(self.issuer, self._subject(claims), next_path)

    # --- helpers ----------------------------------------------------------------------------

    def _subject(self, claims: Mapping[str, Any]) -> str:
        name = self.settings.subject_claim
        value = claims.get(name)
        if not isinstance(value, str) or not value or len(value) > 256:
            raise _failed("missing_claim", f"the ID token has no usable {name!r}", claim=name)
        if name == "email" and claims.get("email_verified") is not True:
            raise _failed("email_not_verified", "the identity provider has not verified the email")
        return value

    def _redeem(self, code: str, pkce_verifier: str) -> str:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self._redirect_url,
            "code_verifier": pkce_verifier,
        }
        secret = self.settings.client_secret
        auth = (self.settings.client_id, secret.get_secret_value()) if secret else None
        if auth is None:
            form["client_id"] = self.settings.client_id
        try:
            doc = fetch_json(
                self._client,
                self._discover().token,
                timeout_s=self.settings.timeout_s,
                form=form,
                auth=auth,
            )
        except JwksFetchError as exc:
            if 400 <= exc.status < 500:
                raise _failed(
                    "code_refused",
                    "the identity provider refused the authorization code",
                    error=exc.error or str(exc.status),
                ) from exc
            raise OidcProviderUnavailable(
                "the identity provider's token endpoint is unreachable",
                context={"issuer": self.issuer},
            ) from exc
        token = doc.get("id_token")
        if not isinstance(token, str) or not token:
            raise _failed("code_refused", "the identity provider returned no ID token")
        return token

    def _discover(self) -> _Endpoints:
        with self._lock:
            now = time.monotonic()
            if self._endpoints is not None and now - self._discovered_at < _DISCOVERY_CACHE_S:
                return self._endpoints
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            try:
                doc = fetch_json(self._client, url, timeout_s=self.settings.timeout_s)
            except JwksFetchError as exc:
                raise OidcProviderUnavailable(
                    "the identity provider's discovery document is unreachable",
                    context={"issuer": self.issuer},
                ) from exc
            found = []
            for field in ("authorization_endpoint", "token_endpoint"):
                value = doc.get(field)
                if not isinstance(value, str) or not self._allowed(value):
                    raise OidcProviderUnavailable(
                        f"the discovery document has no usable {field}",
                        context={"issuer": self.issuer},
                    )
                found.append(value)
            if doc.get("issuer") != self.issuer:
                raise OidcProviderUnavailable(
                    "the discovery document names another issuer", context={"issuer": self.issuer}
                )
            self._endpoints = _Endpoints(*found)
            self._discovered_at = now
            return self._endpoints

    def _allowed(self, url: str) -> bool:
        base = url.split("?", 1)[0]
        return is_allowed_issuer_url(base, allow_insecure_loopback=self._loopback)


def _parse_cookie(cookie: str | None) -> tuple[str, str]:
    if not cookie or len(cookie) > _MAX_COOKIE or "." not in cookie:
        raise _failed("no_login_state", "this browser has no sign-in in progress; start again")
    key, _, encoded = cookie.partition(".")
    try:
        next_path = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except ValueError:
        raise _failed("no_login_state", "the sign-in cookie is damaged; start again") from None
    if len(key) != _KEY_CHARS:
        raise _failed("no_login_state", "the sign-in cookie is damaged; start again")
    return key, next_path
