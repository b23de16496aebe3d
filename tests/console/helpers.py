"""Console test helpers: a browser-like HTTP client with its own cookie jar, signed in."""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.factories.governance import create_deployment, record_eval, request_promotion
from tests.fixtures.governance import Team

_CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


def signed_in(url: str, token: str) -> httpx.Client:
    """A client that signed in to the console at ``url`` with ``token`` (cookie kept)."""
    browser = httpx.Client(base_url=url, timeout=30, follow_redirects=False)
    r = browser.post("/console/sign-in", data={"token": token, "next": "/console/inbox"})
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/console/inbox"
    return browser


def signed_in_app(app: Any, token: str) -> TestClient:
    """The same, in process on ``app`` (its own cookie jar; the app's artifact store)."""
    browser = TestClient(app, follow_redirects=False)
    r = browser.post("/console/sign-in", data={"token": token, "next": "/console/inbox"})
    assert r.status_code == 303, r.text
    return browser


def csrf_of(browser: httpx.Client, path: str = "/console/inbox") -> str:
    page = browser.get(path)
    assert page.status_code == 200, page.text
    found = _CSRF.search(page.text)
    assert found is not None, page.text
    return found.group(1)


def error_code(page: httpx.Response) -> str | None:
    found = re.search(r'data-error="([a-z_]+)"', page.text)
    return found.group(1) if found else None


def stable_and_pending(team: Team) -> tuple[str, str, dict[str, Any]]:
    """A deployment with v1 stable and a pending canary request of a better v2 (requested by
    the developer): (deployment, v2 ref, the request)."""
    v1 = team.push()
    record_eval(team.client, team.dev, v1, 0.80)
    dep = create_deployment(team.client, team.operator, team.base, team.adapter_ref)
    first = request_promotion(team.client, team.dev, v1, dep).json()
    r = team.client.post(f"/api/v1/promotions/{first['id']}/approve", headers=team.approver.headers)
    assert r.json()["state"] == "completed", r.text
    v2 = team.push()
    record_eval(team.client, team.dev, v2, 0.90)
    made = request_promotion(team.client, team.dev, v2, dep, plan="canary").json()
    assert made["state"] == "pending", made
    return dep, v2, made
