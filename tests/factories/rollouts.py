"""Shared set-up for rollout tests: a fast plan, a deployment with v1 stable and v2 canary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.factories.governance import (
    Who,
    create_deployment,
    decide,
    record_eval,
    request_promotion,
)
from tests.fixtures.governance import Team

# The floor lets "fast" step without dwelling; every plan still needs an absolute error-rate
# cap (25 % here, loose enough that the stable comparison decides the tests written for it).
FAST_PLANS = """
default_plan: canary
floor:
  max_first_share: 10
  min_dwell_s: 0
  max_failure_limit: 3
  error_rate_cap: {max: 0.25, max_min_requests: 1000}
plans:
  canary:
    steps:
      - {share: 5, min_dwell_s: 300}
      - {share: 25, min_dwell_s: 300}
      - {share: 50, min_dwell_s: 300}
      - {share: 100, min_dwell_s: 300}
    analysis:
      - {metric: error_rate, compare: stable, max_ratio: 1.5, min_requests: 200}
      - {metric: error_rate, compare: absolute, max: 0.25, min_requests: 200}
    failure_limit: 1
    on_inconclusive: hold
  fast:
    steps:
      - {share: 5, min_dwell_s: 0}
      - {share: 50, min_dwell_s: 0}
      - {share: 100, min_dwell_s: 0}
    analysis:
      - {metric: error_rate, compare: stable, max_ratio: 1.5, min_requests: 100}
      - {metric: error_rate, compare: absolute, max: 0.25, min_requests: 100}
    failure_limit: 1
    on_inconclusive: hold
"""


def apply_plans(client: TestClient, rollout_text: str) -> None:
    current = client.get("/api/v1/policies").json()
    r = client.post(
        "/api/v1/policies",
        json={
            "schema_text": current["schema_text"],
            "policies_text": current["policies_text"],
            "gates_text": current["gates_text"],
            "rollout_text": rollout_text,
            "source": "test",
        },
    )
    assert r.status_code == 201, r.text


@dataclass
class Canary:
    deployment: str
    v1: str
    v2: str
    promotion: str


def canary(team: Team, plan: str = "canary") -> Canary:
    """v1 stable, then v2 approved: a running canary of ``plan``."""
    v1 = team.push()
    record_eval(team.client, team.dev, v1, 0.80)
    dep = create_deployment(team.client, team.operator, team.base, team.adapter_ref)
    first = request_promotion(team.client, team.dev, v1, dep, plan=plan).json()
    assert decide(team.client, team.approver, first["id"], "approve").json()["state"] == "completed"
    v2 = team.push()
    record_eval(team.client, team.dev, v2, 0.85)
    second = request_promotion(team.client, team.dev, v2, dep, plan=plan).json()
    assert second["state"] == "pending", second
    approved = decide(team.client, team.approver, second["id"], "approve").json()
    assert approved["state"] == "rolling_out", approved
    return Canary(dep, v1, v2, second["id"])


def status(client: TestClient, dep: str, who: Who | None = None) -> httpx.Response:
    r: httpx.Response = client.get(
        f"/api/v1/deployments/{dep}", headers=who.headers if who else None
    )
    return r


def report(
    client: TestClient,
    who: Who,
    dep: str,
    revision: int,
    arm: str,
    requests: int,
    errors: int,
    **extra: Any,
) -> httpx.Response:
    end = datetime.now(UTC)
    r: httpx.Response = client.post(
        f"/api/v1/deployments/{dep}/reports",
        json={
            "revision": revision,
            "arm": arm,
            "window_start": (end - timedelta(minutes=1)).isoformat(),
            "window_end": end.isoformat(),
            "requests": requests,
            "errors": errors,
            **extra,
        },
        headers=who.headers,
    )
    return r


def tick(team: Team, *deployments: str) -> list[dict[str, Any]]:
    """One controller round; the decisions about ``deployments`` only (the test database is
    shared: rollouts other tests left running may be decided in the same round)."""
    decided: list[dict[str, Any]] = team.client.app.state.controller.tick()  # type: ignore[attr-defined]
    return [d for d in decided if d["deployment"] in deployments]
