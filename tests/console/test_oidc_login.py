"""The console's OpenID Connect flow (registry.console.oidc_login) against a real provider on
loopback, without a registry server: claims, client kinds, an unreachable issuer, settings."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from registry.console.oidc_login import OidcLogin, Started
from registry.errors import OidcProviderUnavailable, OidcSignInFailed
from registry.oidc.jwks import JwksCache
from registry.oidc.verifier import OidcVerifier
from registry.oidc_settings import ConsoleOidcSettings
from tests.console.oidc import Provider, authorize
from tests.factories.catalog import unique
from tests.fixtures.server import free_port

CALLBACK = "http://127.0.0.1:9/console/oidc/callback"  # never opened: the test follows by hand


def _login(provider: Provider, **settings: object) -> OidcLogin:
    """A confidential client (the provider's token endpoint takes client_secret_basic only, so
    the public-client path, PKCE without a secret, is not exercised here)."""
    client_id, secret = provider.register(CALLBACK)
    config = ConsoleOidcSettings(
        issuer=provider.url,
        client_id=client_id,
        client_secret=SecretStr(secret),
        redirect_url=CALLBACK,
        **settings,
    )
    jwks = JwksCache(timeout_s=5, cache_s=3600, refresh_min_s=0, allow_insecure_loopback=True)
    verifier = OidcVerifier(jwks, leeway_s=30, max_token_age_s=3600)
    return OidcLogin(config, verifier, allow_insecure_loopback=True)


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30, follow_redirects=False) as client:
        yield client


def _sign_in(
    login: OidcLogin, browser: httpx.Client, sub: str, next_path: str = "/console/x"
) -> tuple[Started, dict[str, str]]:
    started = login.begin(next_path)
    back = authorize(browser, started.authorize_url, sub)
    params = {k: v[0] for k, v in parse_qs(urlsplit(back.headers["location"]).query).items()}
    return started, params


def test_a_confidential_client_gets_the_subject_and_where_to_go_next(
    oidc_provider: Provider, browser: httpx.Client
) -> None:
    login = _login(oidc_provider)
    sub = unique("person")
    started, params = _sign_in(login, browser, sub)
    done = login.finish(started.cookie, params)
    assert (done.issuer, done.subject, done.next) == (oidc_provider.url, sub, "/console/x")
    login.close()


def test_the_email_claim_counts_only_when_the_provider_verified_it(
    oidc_provider: Provider, browser: httpx.Client
) -> None:
    login = _login(oidc_provider, subject_claim="email")
    verified, unverified = unique("v"), unique("u")
    oidc_provider.set_user(verified, email=f"{verified}@example.com", email_verified=True)
    oidc_provider.set_user(unverified, email=f"{unverified}@example.com")
    started, params = _sign_in(login, browser, verified)
    assert login.finish(started.cookie, params).subject == f"{verified}@example.com"
    started, params = _sign_in(login, browser, unverified)
    with pytest.raises(OidcSignInFailed) as refused:
        login.finish(started.cookie, params)
    assert refused.value.context["reason"] == "email_not_verified"
    login.close()


def test_a_claim_the_token_lacks_is_refused(oidc_provider: Provider, browser: httpx.Client) -> None:
    login = _login(oidc_provider, subject_claim="employee_id")
    started, params = _sign_in(login, browser, unique("person"))
    with pytest.raises(OidcSignInFailed) as refused:
        login.finish(started.cookie, params)
    assert refused.value.context == {"reason": "missing_claim", "claim": "employee_id"}
    login.close()


def test_a_wrong_client_secret_is_a_refused_code(
    oidc_provider: Provider, browser: httpx.Client
) -> None:
    login = _login(oidc_provider)
    login.settings = login.settings.model_copy(update={"client_secret": SecretStr("wrong")})
    started, params = _sign_in(login, browser, unique("person"))
    with pytest.raises(OidcSignInFailed) as refused:
        login.finish(started.cookie, params)
    assert refused.value.context["reason"] == "code_refused"
    assert refused.value.context["error"] == "invalid_client"
    login.close()


@pytest.mark.parametrize("cookie", [None, "", "short.x", "a" * 43 + ".gA", "x" * 2000])
def test_a_missing_or_damaged_sign_in_cookie_is_refused(cookie: str | None) -> None:
    settings = ConsoleOidcSettings(
        issuer="https://issuer.invalid", client_id="c", redirect_url=CALLBACK
    )
    jwks = JwksCache(timeout_s=1, cache_s=1, refresh_min_s=0)
    verifier = OidcVerifier(jwks, leeway_s=0, max_token_age_s=60)
    login = OidcLogin(settings, verifier, allow_insecure_loopback=False)
    with pytest.raises(OidcSignInFailed) as refused:
        login.finish(cookie, {"code": "c", "state": "s"})
    assert refused.value.context["reason"] == "no_login_state"


def test_an_unreachable_issuer_is_unavailable_not_a_crash() -> None:
    settings = ConsoleOidcSettings(
        issuer=f"http://127.0.0.1:{free_port()}", client_id="c", redirect_url=CALLBACK, timeout_s=2
    )
    jwks = JwksCache(timeout_s=1, cache_s=1, refresh_min_s=0, allow_insecure_loopback=True)
    login = OidcLogin(
        settings,
        OidcVerifier(jwks, leeway_s=0, max_token_age_s=60),
        allow_insecure_loopback=True,
    )
    with pytest.raises(OidcProviderUnavailable):
        login.begin("/console/inbox")


def test_settings_name_what_is_missing() -> None:
    with pytest.raises(ValidationError, match="REGISTRY_CONSOLE_OIDC__CLIENT_ID"):
        ConsoleOidcSettings(issuer="https://id.example.com")
    with pytest.raises(ValidationError, match="openid"):
        ConsoleOidcSettings(
            issuer="https://id.example.com", client_id="c", redirect_url=CALLBACK, scopes="email"
        )
    assert not ConsoleOidcSettings().enabled
