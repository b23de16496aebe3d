"""A real OpenID Connect provider on loopback (``oidc-provider-mock``: authlib's authorization
server under Flask, with a login form, client registration, a token endpoint, JWKS and RS256 ID
tokens) and the console server that signs in through it.

The provider requires registered clients, so redirect URIs and client secrets are checked by the
provider as a real one does; a test registers the console with the callback URL of a server on a
port picked in advance.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import oidc_provider_mock
import pytest
import werkzeug.serving

from tests.fixtures.server import LiveServer, free_port, serving

CLIENT_SECRET_BASIC = "client_secret_basic"


@dataclass(frozen=True)
class Provider:
    url: str

    def register(
        self, redirect_url: str, auth_method: str = CLIENT_SECRET_BASIC
    ) -> tuple[str, str]:
        """Register a client (the console) → (client_id, client_secret)."""
        r = httpx.post(
            f"{self.url}/oauth2/clients",
            json={"redirect_uris": [redirect_url], "token_endpoint_auth_method": auth_method},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body["client_id"], body["client_secret"]

    def set_user(self, sub: str, **claims: Any) -> None:
        r = httpx.put(f"{self.url}/users/{sub}", json=claims, timeout=10)
        assert r.status_code == 204, r.text


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[Provider]:
    server = werkzeug.serving.make_server(
        "127.0.0.1",
        0,
        oidc_provider_mock.app(require_client_registration=True, require_nonce=True),
        threaded=True,
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Provider(f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@dataclass(frozen=True)
class SsoServer:
    server: LiveServer
    provider: Provider

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="session")
def sso_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, oidc_provider: Provider
) -> Iterator[SsoServer]:
    """``serve`` with console sign-in through ``oidc_provider`` (a confidential client)."""
    port = free_port()
    callback = f"http://127.0.0.1:{port}/console/oidc/callback"
    client_id, secret = oidc_provider.register(callback)
    with serving(
        database_url,
        Path(tmp_path_factory.mktemp("sso")),
        port,
        REGISTRY_OIDC__ALLOW_INSECURE_LOOPBACK="true",
        REGISTRY_CONSOLE_OIDC__ISSUER=oidc_provider.url,
        REGISTRY_CONSOLE_OIDC__CLIENT_ID=client_id,
        REGISTRY_CONSOLE_OIDC__CLIENT_SECRET=secret,
        REGISTRY_CONSOLE_OIDC__REDIRECT_URL=callback,
        REGISTRY_CONSOLE_OIDC__LABEL="Sign in with Example SSO",
    ) as live:
        yield SsoServer(live, oidc_provider)


_STATE = re.compile(r"[?&]state=([^&]+)")


def authorize(browser: httpx.Client, location: str, sub: str | None) -> httpx.Response:
    """At the provider's authorization page: sign in as ``sub`` (None: press Deny) → the
    provider's redirect back to the console."""
    form = browser.get(location)
    assert form.status_code == 200, form.text
    data = {"sub": sub} if sub is not None else {"action": "deny"}
    answer = browser.post(location, data=data)
    assert answer.status_code == 302, answer.text
    return answer


def sso_sign_in(
    browser: httpx.Client, server_url: str, sub: str | None, next: str = ""
) -> httpx.Response:
    """Start at the console, sign in at the provider as ``sub``, follow the provider back to
    the callback; → the callback's answer (cookies kept in ``browser``)."""
    start = browser.get(f"{server_url}/console/oidc/start", params={"next": next} if next else None)
    assert start.status_code == 303, start.text
    back = authorize(browser, start.headers["location"], sub)
    return browser.get(back.headers["location"])
