"""Issue 17: the web console over real HTTP (a server process): sign-in and its cookie, the
security headers, CSRF, authorization through the API's own path, four-eyes, sign-out and token
revocation ending a session, and "What served?" / the audit page agreeing with the API."""

from __future__ import annotations

import httpx

from registry.console.sessions import COOKIE
from tests.console.helpers import csrf_of, error_code, signed_in, stable_and_pending
from tests.factories.governance import make_principal
from tests.fixtures.governance import Team
from tests.fixtures.server import LiveServer


def _state(team: Team, promotion_id: str) -> str:
    state: str = team.client.get(f"/api/v1/promotions/{promotion_id}").json()["state"]
    return state


def test_no_session_redirects_to_sign_in_and_a_bad_token_is_refused(
    live_server: LiveServer,
) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as anon:
        r = anon.get("/console/audit?action=promotion")
        assert r.status_code == 303
        assert (
            r.headers["location"] == "/console/sign-in?next=%2Fconsole%2Faudit%3Faction%3Dpromotion"
        )
        bad = anon.post("/console/sign-in", data={"token": "ar_" + "x" * 40})
        assert bad.status_code == 401
        assert COOKIE not in bad.cookies
        assert "unauthenticated" in bad.text
        # A console form without a session is refused before its body is read.
        forged = anon.post("/console/promotions/00000000-0000-0000-0000-000000000000/approve")
        assert forged.status_code == 401


def test_sign_in_sets_a_strict_http_only_cookie_and_pages_carry_security_headers(
    live_server: LiveServer, team: Team
) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as browser:
        r = browser.post("/console/sign-in", data={"token": team.approver.token, "next": "//evil"})
        assert r.status_code == 303
        assert r.headers["location"] == "/console/inbox"  # no open redirect
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert "path=/console" in cookie
        page = browser.get("/console/inbox")
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert team.approver.name in page.text


def test_the_inbox_lists_what_the_caller_may_approve_and_csrf_guards_every_form(
    live_server: LiveServer, team: Team
) -> None:
    _, v2, made = stable_and_pending(team)
    approver = signed_in(live_server.url, team.approver.token)
    requester = signed_in(live_server.url, team.dev.token)
    assert made["id"] in approver.get("/console/inbox").text
    assert made["id"] not in requester.get("/console/inbox").text  # four eyes: not mine
    approve = f"/console/promotions/{made['id']}/approve"
    no_token = approver.post(approve, data={"comment": "lgtm"})
    assert (no_token.status_code, error_code(no_token)) == (403, "csrf_failed")
    wrong = approver.post(approve, data={"csrf": "0" * 64})
    assert (wrong.status_code, error_code(wrong)) == (403, "csrf_failed")
    token = csrf_of(approver)
    other_origin = approver.post(
        approve, data={"csrf": token}, headers={"Origin": "https://evil.example"}
    )
    assert (other_origin.status_code, error_code(other_origin)) == (403, "csrf_failed")
    assert _state(team, made["id"]) == "pending"  # nothing changed
    ok = approver.post(approve, data={"csrf": token, "plan_digest": made["plan_digest"]})
    assert ok.status_code == 303, ok.text
    assert _state(team, made["id"]) == "rolling_out"
    shown = approver.get(f"/console/promotions/{made['id']}").text
    assert "rolling_out" in shown
    assert team.approver.name in shown
    assert v2 in shown


def test_requester_sees_separation_of_duties_and_a_viewer_cannot_decide(
    live_server: LiveServer, team: Team
) -> None:
    _, _, made = stable_and_pending(team)
    path = f"/console/promotions/{made['id']}"
    requester = signed_in(live_server.url, team.dev.token)
    page = requester.get(path)
    assert error_code(page) == "separation_of_duties"
    assert 'class="approve"' not in page.text
    refused = requester.post(f"{path}/approve", data={"csrf": csrf_of(requester, path)})
    assert (refused.status_code, error_code(refused)) == (403, "separation_of_duties")
    viewer_who = make_principal(team.client, "viewer", [team.namespace])
    viewer = signed_in(live_server.url, viewer_who.token)
    page = viewer.get(path)
    assert page.status_code == 200
    assert 'class="approve"' not in page.text
    assert 'class="reject"' not in page.text
    forged = viewer.post(f"{path}/approve", data={"csrf": csrf_of(viewer, path)})
    assert (forged.status_code, error_code(forged)) == (403, "policy_denied")
    assert _state(team, made["id"]) == "pending"
    denied = team.client.get(
        "/api/v1/audit/events", params={"action": "authz.denied", "actor": viewer_who.name}
    ).json()["items"]
    assert denied, "a refused console action is audited as an API one"


def test_sign_out_and_token_revocation_end_the_session(live_server: LiveServer, team: Team) -> None:
    browser = signed_in(live_server.url, team.approver.token)
    signed_out = browser.cookies.get(COOKIE)
    out = browser.post("/console/sign-out", data={"csrf": csrf_of(browser)})
    assert out.status_code == 303
    assert browser.get("/console/inbox").status_code == 303  # the browser dropped the cookie
    other = signed_in(live_server.url, team.approver2.token)
    old = other.cookies.get(COOKIE)
    assert other.get("/console/inbox").status_code == 200
    mine = team.client.get("/api/v1/tokens", headers=team.approver2.headers).json()["items"]
    for t in mine:
        r = team.client.post(f"/api/v1/tokens/{t['id']}/revoke", headers=team.approver2.headers)
        assert r.status_code == 200, r.text
    assert other.get("/console/inbox").status_code == 303  # back to sign-in
    for key in (signed_out, old):  # replaying a stolen key does not bring either back
        with httpx.Client(base_url=live_server.url, timeout=30) as replay:
            replay.cookies.set(COOKIE, key or "", path="/console")
            assert replay.get("/console/inbox").status_code == 303


def test_served_and_audit_pages_agree_with_the_api(live_server: LiveServer, team: Team) -> None:
    dep, _, _ = stable_and_pending(team)
    api = team.client.get(
        "/api/v1/audit/served",
        params={"deployment": dep, "at": "2999-01-01T00:00:00Z", "key": "user-7"},
    ).json()
    admin = signed_in(live_server.url, live_server.token)
    page = admin.get(
        "/console/served",
        params={"deployment": dep, "at": "2999-01-01T00:00:00Z", "key": "user-7"},
    )
    assert page.status_code == 200, page.text
    assert f'data-field="revision">{api["revision"]}<' in page.text
    assert api["stable"]["ref"] in page.text
    assert api["arm"] in page.text
    bad = admin.get("/console/served", params={"deployment": dep, "at": "yesterday"})
    assert (bad.status_code, error_code(bad)) == (400, "bad_request")
    verified = team.client.get("/api/v1/audit/verify").json()
    audit = admin.get("/console/audit", params={"check": "true"})
    assert f'data-ok="{str(verified["ok"]).lower()}"' in audit.text
    events = team.client.get("/api/v1/audit/events", params={"limit": 5}).json()["items"]
    shown = admin.get("/console/audit").text
    positions = [shown.index(f'data-seq="{e["seq"]}"') for e in events]
    assert positions == sorted(positions)  # the API's order


def test_a_rollback_is_compare_and_set_and_needs_its_confirmation(
    live_server: LiveServer, team: Team
) -> None:
    dep, _, made = stable_and_pending(team)
    team.client.post(f"/api/v1/promotions/{made['id']}/approve", headers=team.approver2.headers)
    revision = team.client.get(f"/api/v1/deployments/{dep}").json()["revision"]
    operator = signed_in(live_server.url, team.operator.token)
    path = f"/console/deployments/{dep}"
    assert operator.get("/console/deployments").text.count(f'href="{path}"') == 1
    token = csrf_of(operator, path)
    unconfirmed = operator.post(
        f"{path}/rollback", data={"csrf": token, "expected_revision": str(revision)}
    )
    assert (unconfirmed.status_code, error_code(unconfirmed)) == (400, "bad_request")
    stale = operator.post(
        f"{path}/rollback",
        data={"csrf": token, "expected_revision": str(revision - 1), "confirm": "yes"},
    )
    assert stale.status_code == 412, stale.text
    assert team.client.get(f"/api/v1/deployments/{dep}").json()["revision"] == revision
    done = operator.post(
        f"{path}/rollback",
        data={"csrf": token, "expected_revision": str(revision), "confirm": "yes"},
    )
    assert done.status_code == 303, done.text
    assert team.client.get(f"/api/v1/deployments/{dep}").json()["candidate"] is None
    viewer = signed_in(
        live_server.url, make_principal(team.client, "viewer", [team.namespace]).token
    )
    assert 'id="rollback"' not in viewer.get(path).text
    forged = viewer.post(
        f"{path}/rollback",
        data={"csrf": csrf_of(viewer, path), "expected_revision": "99", "confirm": "yes"},
    )
    assert (forged.status_code, error_code(forged)) == (403, "policy_denied")


def test_api_docs_need_a_session(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as anon:
        assert anon.get("/docs").headers["location"] == "/console/docs"
        assert anon.get("/console/docs").status_code == 303
        assert anon.get("/console/openapi.json").status_code == 303
        asset = anon.get("/console/swagger/swagger-ui-bundle.js")
        assert asset.status_code == 200  # public, like the stylesheet: no data in it
        assert anon.get("/console/swagger/../../../etc/passwd").status_code == 404
    admin = signed_in(live_server.url, live_server.token)
    doc = admin.get("/console/openapi.json").json()
    assert "/api/v1/promotions" in doc["paths"]


def test_the_vendored_htmx_is_the_pinned_release_with_its_licence() -> None:
    import hashlib
    from importlib import resources

    static = resources.files("registry.console").joinpath("static")
    body = static.joinpath("htmx.min.js").read_bytes()
    # htmx.org 2.0.8 from npm (dist/htmx.min.js); a new release updates this digest on purpose.
    assert hashlib.sha256(body).hexdigest() == (
        "22283ef68cb7545914f0a88a1bdedc7256a703d1d580c1d255217d0a50d31313"
    )
    assert "Zero-Clause BSD" in static.joinpath("htmx.LICENSE").read_text()


def test_audit_filters_by_time_and_refuses_a_time_without_zone(
    live_server: LiveServer, team: Team
) -> None:
    admin = signed_in(live_server.url, live_server.token)
    future = admin.get("/console/audit", params={"since": "2999-01-01T00:00:00Z"})
    assert future.status_code == 200
    assert "No events match." in future.text
    naive = admin.get("/console/audit", params={"until": "2026-01-01T00:00:00"})
    assert (naive.status_code, error_code(naive)) == (400, "bad_request")
    fragment = admin.get("/console/audit/verify")
    assert fragment.status_code == 200
    assert 'id="verify-result"' in fragment.text
    assert "<html" not in fragment.text  # a fragment for htmx to swap in
    viewer = signed_in(
        live_server.url, make_principal(team.client, "viewer", [team.namespace]).token
    )
    refused = viewer.get("/console/audit/verify")
    assert (refused.status_code, error_code(refused)) == (403, "policy_denied")


def test_sign_in_from_another_origin_and_oversized_forms_are_refused(
    live_server: LiveServer,
) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as anon:
        login_csrf = anon.post(
            "/console/sign-in",
            data={"token": live_server.token},
            headers={"Origin": "https://evil.example"},
        )
        assert login_csrf.status_code == 403
        assert COOKIE not in login_csrf.cookies
        many = anon.post("/console/sign-in", content="&".join(f"f{n}=1" for n in range(40)))
        assert many.status_code == 400
        assert many.json()["error"] == "bad_request"
