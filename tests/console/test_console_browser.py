"""Issue 17, end to end in a real browser: Chromium driven by Playwright against a server
process. Sign-in, a blocked request's failing gate, four-eyes for the requester, a second
person's approval starting the canary, "What served?" and the audit page agreeing with the CLI,
a viewer without decision buttons, and a screenshot of every main page."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from tests.console.helpers import stable_and_pending
from tests.console.oidc import SsoServer
from tests.factories.catalog import unique
from tests.factories.governance import make_principal, record_eval, request_promotion
from tests.fixtures.governance import Team
from tests.fixtures.server import LiveServer

Shot = Callable[[Page, str], Path]


_A11Y = """() => {
  const problems = [];
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden") continue;
    const labelled = el.getAttribute("aria-label") || el.closest("label") ||
      (el.id && document.querySelector(`label[for="${el.id}"]`));
    if (!labelled) problems.push(`unlabelled ${el.tagName} ${el.name}`);
  }
  for (const b of document.querySelectorAll("button, a[href]")) {
    if (!(b.textContent.trim() || b.getAttribute("aria-label"))) problems.push("unnamed control");
  }
  let last = 0;
  for (const h of document.querySelectorAll("main h1, main h2, main h3, main h4")) {
    const level = Number(h.tagName[1]);
    const bad = last === 0 ? level !== 1 : level > last + 1;
    if (bad) problems.push(`heading ${h.tagName} after h${last}`);
    last = level;
  }
  if (!document.documentElement.lang) problems.push("no lang");
  return problems;
}"""


def _accessible(page: Page) -> None:
    """Accessibility basics of the page shown: every input labelled, every control named,
    headings in order from one h1, the document's language."""
    problems = page.evaluate(_A11Y)
    assert problems == [], (page.url, problems)


def _sign_in(page: Page, url: str, token: str, target: str = "/console/inbox") -> None:
    page.goto(url + target)
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next="))  # no session → sign-in
    _accessible(page)
    page.fill("#token", token)
    page.click("button[type=submit]")
    expect(page).to_have_url(url + target)


def test_an_approver_signs_in_reviews_and_approves_a_canary(
    page: Page, live_server: LiveServer, team: Team, shot: Shot
) -> None:
    dep, v2, made = stable_and_pending(team)
    _sign_in(page, live_server.url, team.approver.token)
    row = page.locator(f"a[href='/console/promotions/{made['id']}']")
    expect(row).to_be_visible()
    shot(page, "inbox")
    _accessible(page)
    row.click()
    expect(page.locator("h1")).to_contain_text(v2)
    expect(page.locator("[data-plan-digest]")).to_have_text(made["plan_digest"])
    expect(page.locator("table.evals")).to_contain_text("accuracy")
    shot(page, "promotion")
    _accessible(page)
    page.fill("#comment", "numbers look right")
    page.keyboard.press("Tab")  # the Approve button is next in the tab order
    expect(page.locator("button.approve")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("[data-state]")).to_have_text("rolling_out")
    page.click("text=Deployments")
    page.click(f"a[href='/console/deployments/{dep}']")
    expect(page.locator("[data-field=candidate]")).to_contain_text(f"{v2} at 10.00 %")
    _accessible(page)
    api = team.client.get(f"/api/v1/promotions/{made['id']}").json()
    assert api["state"] == "rolling_out"
    assert [a["approver"] for a in api["approvals"]] == [team.approver.name]


def test_a_blocked_request_shows_its_failing_gate_with_the_numbers(
    page: Page, live_server: LiveServer, team: Team
) -> None:
    dep, _, _ = stable_and_pending(team)
    worse = team.push()
    record_eval(team.client, team.dev, worse, 0.50)  # below the stable 0.80
    blocked = request_promotion(team.client, team.dev, worse, dep).json()
    assert blocked["state"] == "blocked", blocked
    failing = [g for g in blocked["gates"] if not g["passed"]]
    _sign_in(page, live_server.url, team.approver.token, f"/console/promotions/{blocked['id']}")
    expect(page.locator("[data-state]")).to_have_text("blocked")
    for gate in failing:
        cells = page.locator(f"tr[data-gate='{gate['name']}']")
        expect(cells).to_contain_text("failed")
    expect(page.locator("table.evals")).to_contain_text("0.5")
    expect(page.locator("table.evals")).to_contain_text("0.8")
    expect(page.locator("button.approve")).to_have_count(0)  # nothing to approve
    _accessible(page)


def test_the_requester_is_refused_and_a_viewer_sees_no_buttons(
    page: Page, live_server: LiveServer, team: Team, shot: Shot
) -> None:
    _, _, made = stable_and_pending(team)
    path = f"/console/promotions/{made['id']}"
    _sign_in(page, live_server.url, team.dev.token, path)
    expect(page.locator("[data-error=separation_of_duties]")).to_be_visible()
    expect(page.locator("button.approve")).to_have_count(0)
    shot(page, "promotion-requester")
    page.click("text=Sign out")
    expect(page).to_have_url(re.compile(r"/console/sign-in"))
    viewer = make_principal(team.client, "viewer", [team.namespace])
    _sign_in(page, live_server.url, viewer.token, path)
    expect(page.locator("button.approve")).to_have_count(0)
    expect(page.locator("button.reject")).to_have_count(0)
    assert team.client.get(f"/api/v1/promotions/{made['id']}").json()["state"] == "pending"


def _cli(server: LiveServer, *args: str) -> Any:
    """The real CLI in a subprocess against the same server, its JSON answer."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "registry",
            "--server",
            server.url,
            "--token",
            server.token,
            "--output",
            "json",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_what_served_and_the_audit_log_match_the_cli(
    page: Page, live_server: LiveServer, team: Team, shot: Shot
) -> None:
    dep, _, _ = stable_and_pending(team)
    at = "2999-01-01T00:00:00Z"
    served = _cli(
        live_server, "audit", "served", "--deployment", dep, "--at", at, "--key", "user-42"
    )
    _sign_in(page, live_server.url, live_server.token, "/console/served")
    page.fill("#deployment", dep)
    page.fill("#at", at)
    page.fill("#key", "user-42")
    page.click("button[type=submit] >> text=Look up")
    expect(page.locator("[data-field=revision]")).to_have_text(str(served["revision"]))
    expect(page.locator("[data-field=stable]")).to_have_text(served["stable"]["ref"])
    expect(page.locator("[data-field=arm]")).to_have_text(served["arm"])
    shot(page, "served")
    _accessible(page)
    page.click("text=Audit log")
    shown = [
        int(s)
        for s in page.locator("tr[data-seq]").evaluate_all("rows => rows.map(r => r.dataset.seq)")
    ]
    logged = _cli(live_server, "audit", "log", "--limit", str(len(shown)))["items"]
    assert shown == [e["seq"] for e in logged]  # same events, same order
    with page.expect_response(re.compile(r"/console/audit/verify(\?|$)")) as fragment:
        page.click("#verify")  # htmx swaps the verification in without a page load
    assert fragment.value.status == 200
    verified = _cli(live_server, "audit", "verify")
    result = page.locator("#verify-result")
    expect(result).to_have_attribute("data-ok", str(verified["ok"]).lower())
    shot(page, "audit")
    _accessible(page)


def test_the_timeline_shows_the_canary_and_an_operator_rolls_it_back(
    page: Page, live_server: LiveServer, team: Team, shot: Shot
) -> None:
    dep, v2, made = stable_and_pending(team)
    r = team.client.post(f"/api/v1/promotions/{made['id']}/approve", headers=team.approver2.headers)
    assert r.json()["state"] == "rolling_out", r.text
    status = team.client.get(f"/api/v1/deployments/{dep}").json()
    _sign_in(page, live_server.url, team.operator.token, f"/console/deployments/{dep}")
    expect(page.locator("[data-field=candidate]")).to_contain_text(v2)
    expect(page.locator("svg.chart circle.rev")).to_have_count(status["revision"])
    expect(page.locator("svg.chart g.rollback")).to_have_count(0)
    page.once("dialog", lambda dialog: dialog.accept())  # the confirm dialog of console.js
    page.check("input[name=confirm]")
    page.click("#rollback")
    expect(page.locator("[data-field=candidate]")).to_have_text("—")
    after = team.client.get(f"/api/v1/deployments/{dep}").json()
    assert after["revision"] == status["revision"] + 1
    assert after["candidate"] is None
    expect(page.locator("svg.chart g.rollback")).to_have_count(1)
    expect(page.locator(f"tr[data-revision='{after['revision']}']")).to_contain_text(
        "manual_rollback"
    )
    shot(page, "deployment")
    _accessible(page)
    page.click("text=Sign out")
    viewer = make_principal(team.client, "viewer", [team.namespace])
    _sign_in(page, live_server.url, viewer.token, f"/console/deployments/{dep}")
    expect(page.locator("#rollback")).to_have_count(0)


def test_signed_in_users_get_swagger_ui_at_docs(page: Page, live_server: LiveServer) -> None:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    _sign_in(page, live_server.url, live_server.token, "/console/docs")
    page.goto(live_server.url + "/docs")  # the short address redirects here
    expect(page).to_have_url(live_server.url + "/console/docs")
    # Swagger UI renders a 300-operation document: slow on a loaded 2-core machine.
    expect(page.locator(".swagger-ui .info .title")).to_contain_text(
        "Adapter Registry", timeout=60_000
    )
    expect(page.locator(".opblock-tag").first).to_be_visible()
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_redoc_renders_the_same_document(page: Page, live_server: LiveServer) -> None:
    _sign_in(page, live_server.url, live_server.token, "/console/redoc")
    expect(page.locator("#redoc h1").first).to_contain_text("Adapter Registry", timeout=60_000)


def test_the_catalog_leads_to_a_version_with_its_lineage(
    page: Page, live_server: LiveServer, team: Team, shot: Shot
) -> None:
    from tests.console.test_console_catalog import _push

    v1 = _push(team, "first")
    v2 = _push(team, "child", parents=[{"ref": v1, "relation": "continued_from"}])
    _sign_in(page, live_server.url, team.dev.token, f"/console/catalog?ns={team.namespace}")
    shot(page, "catalog")
    _accessible(page)
    page.click(f"a[href='/console/catalog/{team.namespace}/{team.adapter}']")
    expect(page.locator("tr[data-version]")).to_have_count(2)
    page.click("a >> text=v2")
    expect(page.locator(f"svg.lineage g[data-node='{v1}']")).to_be_visible()
    expect(page.locator(f"svg.lineage g.focus[data-node='{v2}']")).to_be_visible()
    expect(page.locator("table.files")).to_contain_text("adapter_config.json")
    shot(page, "version")
    _accessible(page)


def test_the_accessibility_check_sees_what_it_checks(page: Page) -> None:
    page.set_content(
        "<html><body><main><h1>a</h1><h3>skipped</h3>"
        "<input name='q'><button></button></main></body></html>"
    )
    problems = page.evaluate(_A11Y)
    assert "unlabelled INPUT q" in problems
    assert "unnamed control" in problems
    assert "heading H3 after h1" in problems
    assert "no lang" in problems


def test_a_person_signs_in_through_the_identity_provider(
    page: Page, sso_server: SsoServer, client: TestClient, shot: Shot
) -> None:
    """The whole OpenID Connect round trip in the browser: the SameSite=Lax sign-in cookie
    reaches the callback after the provider's cross-site redirect, and the SameSite=Strict
    session cookie is sent on the console page the callback continues to."""
    who = make_principal(client, "approver")
    subject = unique("person")
    linked = client.post(
        f"/api/v1/principals/{who.name}/logins",
        json={"subject": subject, "issuer": sso_server.provider.url},
    )
    assert linked.status_code == 201, linked.text
    page.goto(sso_server.url + "/console/deployments")
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next="))
    _accessible(page)
    shot(page, "sign-in")
    page.locator("#token").focus()
    page.keyboard.press("Tab")  # the token's button, then the single sign-on link
    page.keyboard.press("Tab")
    expect(page.locator("#sso")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(re.escape(sso_server.provider.url) + "/oauth2/authorize"))
    page.fill("input[name=sub]", subject)
    page.click("button:has-text('Authorize')")
    expect(page).to_have_url(sso_server.url + "/console/deployments")
    expect(page.locator("header .who")).to_contain_text(who.name)
