"""Issue 17: people sign in to the console through the organisation's OpenID Connect issuer.

A real provider on loopback (tests/console/oidc.py) and a real server process: the authorization
code flow with PKCE, state and nonce, the principal an admin linked to the person, and every way
the sign-in is refused (unlinked person, another browser's callback, a tampered state, a denied
consent, a replayed callback) without a session."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi.testclient import TestClient

from registry.console.oidc_login import COOKIE as LOGIN_COOKIE
from registry.console.sessions import COOKIE
from tests.console.helpers import csrf_of, error_code
from tests.console.oidc import SsoServer, authorize, sso_sign_in
from tests.factories.catalog import unique
from tests.factories.governance import Who, make_principal
from tests.fixtures.server import LiveServer


def _reason(page: httpx.Response) -> str | None:
    found = re.search(r'data-reason="([a-z_]+)"', page.text)
    return found.group(1) if found else None


def _linked(client: TestClient, sso: SsoServer, role: str = "approver") -> tuple[Who, str]:
    """A principal and the provider subject linked to it (by the admin ``client``)."""
    who = make_principal(client, role)
    subject = unique("person")
    r = client.post(
        f"/api/v1/principals/{who.name}/logins",
        json={"subject": subject, "issuer": sso.provider.url},
    )
    assert r.status_code == 201, r.text
    return who, subject


def _browser() -> httpx.Client:
    return httpx.Client(timeout=30, follow_redirects=False)


def test_sign_in_page_offers_sso_and_a_linked_person_gets_a_session(
    sso_server: SsoServer, client: TestClient
) -> None:
    who, subject = _linked(client, sso_server, "auditor")
    with _browser() as browser:
        form = browser.get(f"{sso_server.url}/console/sign-in")
        assert "Sign in with Example SSO" in form.text
        start = browser.get(
            f"{sso_server.url}/console/oidc/start", params={"next": "/console/audit"}
        )
        assert start.status_code == 303
        query = parse_qs(urlsplit(start.headers["location"]).query)
        assert query["code_challenge_method"] == ["S256"]
        assert query["redirect_uri"] == [f"{sso_server.url}/console/oidc/callback"]
        assert {"state", "nonce", "code_challenge"} <= set(query)
        login_cookie = start.headers["set-cookie"].lower()
        assert "httponly" in login_cookie
        assert "samesite=lax" in login_cookie
        assert "path=/console/oidc" in login_cookie

        back = authorize(browser, start.headers["location"], subject)
        done = browser.get(back.headers["location"])
        assert done.status_code == 200, done.text
        assert 'http-equiv="refresh" content="0; url=/console/audit"' in done.text
        cookie = done.headers.get_list("set-cookie")
        session_cookie = next(c for c in cookie if c.startswith(f"{COOKIE}="))
        assert "samesite=strict" in session_cookie.lower()
        assert "httponly" in session_cookie.lower()

        page = browser.get(f"{sso_server.url}/console/audit")
        assert page.status_code == 200
        assert who.name in page.text
    events = client.get(
        "/api/v1/audit/events", params={"action": "console.sign_in", "actor": who.name}
    ).json()["items"]
    assert events[0]["after"]["via"] == "oidc"
    assert events[0]["after"]["subject"] == subject


def test_sign_out_ends_the_session_and_its_own_token(
    sso_server: SsoServer, client: TestClient
) -> None:
    who, subject = _linked(client, sso_server)
    with _browser() as browser:
        assert sso_sign_in(browser, sso_server.url, subject).status_code == 200
        key = browser.cookies[COOKIE]
        csrf = csrf_of(browser, f"{sso_server.url}/console/inbox")
        out = browser.post(f"{sso_server.url}/console/sign-out", data={"csrf": csrf})
        assert out.status_code == 303
        tokens = client.get("/api/v1/tokens", params={"principal": who.name}).json()["items"]
        session_tokens = [t for t in tokens if t["name"] == "console-session"]
        assert session_tokens, tokens
        assert all(t["revoked_at"] is not None for t in session_tokens)
    with httpx.Client(timeout=30, cookies={COOKIE: key}) as replay:
        assert replay.get(f"{sso_server.url}/console/inbox").status_code == 303


def test_a_person_nobody_linked_gets_no_session(sso_server: SsoServer) -> None:
    with _browser() as browser:
        refused = sso_sign_in(browser, sso_server.url, unique("stranger"))
        assert refused.status_code == 401
        assert error_code(refused) == "oidc_sign_in_failed"
        assert _reason(refused) == "not_linked"
        assert COOKIE not in browser.cookies


def test_a_callback_from_another_browser_or_with_another_state_is_refused(
    sso_server: SsoServer, client: TestClient
) -> None:
    _, subject = _linked(client, sso_server)
    with _browser() as victim, _browser() as attacker:
        # Login CSRF: the attacker's own callback URL, opened in the victim's browser.
        start = attacker.get(f"{sso_server.url}/console/oidc/start")
        back = authorize(attacker, start.headers["location"], subject)
        planted = victim.get(back.headers["location"])
        assert planted.status_code == 401
        assert _reason(planted) == "no_login_state"
        assert COOKIE not in victim.cookies
        # The victim's own sign-in in progress, answered with the attacker's code and state.
        victim.get(f"{sso_server.url}/console/oidc/start")
        swapped = victim.get(back.headers["location"])
        assert _reason(swapped) == "state_mismatch"
        assert COOKIE not in victim.cookies


def test_denied_consent_and_a_replayed_callback_are_refused(
    sso_server: SsoServer, client: TestClient
) -> None:
    _, subject = _linked(client, sso_server)
    with _browser() as browser:
        start = browser.get(f"{sso_server.url}/console/oidc/start")
        denied = browser.get(
            authorize(browser, start.headers["location"], None).headers["location"]
        )
        assert denied.status_code == 401
        assert _reason(denied) == "provider_error"

        start = browser.get(f"{sso_server.url}/console/oidc/start")
        back = authorize(browser, start.headers["location"], subject)
        cookie = browser.cookies[LOGIN_COOKIE]
        assert browser.get(back.headers["location"]).status_code == 200
        # Replayed with the same sign-in cookie: the provider refuses the used code.
        browser.cookies.set(LOGIN_COOKIE, cookie, path="/console/oidc")
        browser.cookies.delete(COOKIE)
        again = browser.get(back.headers["location"])
        assert again.status_code == 401
        assert _reason(again) == "code_refused"
        assert COOKIE not in browser.cookies


def test_linking_logins_is_an_admin_action_with_stable_errors(
    sso_server: SsoServer, client: TestClient
) -> None:
    issuer = sso_server.provider.url
    who = make_principal(client, "developer")
    base = f"/api/v1/principals/{who.name}/logins"
    subject = unique("person")
    assert client.post(base, json={"subject": subject, "issuer": issuer}).status_code == 201
    again = client.post(base, json={"subject": subject, "issuer": issuer})
    assert again.status_code == 409
    assert again.json()["error"] == "console_login_exists"
    listed = client.get(base).json()["items"]
    assert listed == [{"principal": who.name, "issuer": issuer, "subject": subject}]
    viewer = make_principal(client, "viewer")
    denied = client.post(base, json={"subject": "x", "issuer": issuer}, headers=viewer.headers)
    assert denied.status_code == 403
    missing = client.post(
        "/api/v1/principals/nobody-here/logins", json={"subject": "x", "issuer": issuer}
    )
    assert missing.json()["error"] == "principal_not_found"
    # This in-process app has no console issuer configured: one must be named.
    no_issuer = client.post(base, json={"subject": "y"})
    assert no_issuer.status_code == 400
    bad = client.post(base, json={"subject": " padded ", "issuer": issuer})
    assert bad.status_code == 400
    gone = client.delete(base, params={"subject": subject, "issuer": issuer})
    assert gone.status_code == 204
    assert client.get(base).json()["items"] == []
    twice = client.delete(base, params={"subject": subject, "issuer": issuer})
    assert twice.json()["error"] == "console_login_not_found"
    actions = [
        e["action"]
        for e in client.get(
            "/api/v1/audit/events", params={"resource": f"principal:{who.name}"}
        ).json()["items"]
    ]
    assert "principal.login_link" in actions
    assert "principal.login_unlink" in actions


def test_without_sso_configured_the_start_is_refused(live_server: LiveServer) -> None:
    live_server_url = live_server.url
    with _browser() as browser:
        form = browser.get(f"{live_server_url}/console/sign-in")
        assert 'id="sso"' not in form.text
        refused = browser.get(f"{live_server_url}/console/oidc/start")
        assert refused.status_code == 401
        assert _reason(refused) == "not_configured"


def test_a_disabled_principal_cannot_sign_in_and_its_open_session_ends(
    sso_server: SsoServer, client: TestClient
) -> None:
    who, subject = _linked(client, sso_server)
    with _browser() as browser:
        assert sso_sign_in(browser, sso_server.url, subject).status_code == 200
        assert browser.get(f"{sso_server.url}/console/inbox").status_code == 200
        assert client.post(f"/api/v1/principals/{who.name}/disable").status_code == 200
        assert browser.get(f"{sso_server.url}/console/inbox").status_code == 303
    with _browser() as browser:
        refused = sso_sign_in(browser, sso_server.url, subject)
        assert refused.status_code == 401
        assert error_code(refused) == "unauthenticated"
        assert COOKIE not in browser.cookies
