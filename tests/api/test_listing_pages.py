"""API tokens, trusted publishers and controller decisions are listed in keyset pages like every
other list (``{items, next_page_token}``): a walk returns each row once, in order, ties on the
creation time included; a page token that is not one of ours is ``invalid_page_token`` (400);
a page of principals costs the same queries whatever its size."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from registry.auth.models import ApiToken
from registry.db.session import unit_of_work
from registry.deployments.models import Deployment, Rollout, RolloutDecision
from tests.factories.catalog import all_pages, create_namespace, unique
from tests.factories.governance import make_principal
from tests.factories.rollouts import canary
from tests.fixtures.governance import Team, counted


def _forged(cursor: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode().rstrip("=")


SOME_ID = "0f6a0d8e-2b1c-4c3d-9e8f-7a6b5c4d3e2f"  # fixed: xdist workers must collect alike
BAD_TOKENS = [
    "%%%",
    _forged(["2026-01-01T00:00:00+00:00"]),  # wrong arity
    _forged(["2026-01-01T00:00:00", SOME_ID]),  # no time zone
    _forged(["yesterday", SOME_ID]),
    _forged(["2026-01-01T00:00:00+00:00", "not-a-uuid"]),
    _forged([1, 2]),
]


def test_token_pages_newest_first_with_ties(client: TestClient) -> None:
    ns = create_namespace(client)
    dev = make_principal(client, "developer", [ns])
    made = [
        client.post("/api/v1/tokens", json={"name": f"t{i}"}, headers=dev.headers).json()["id"]
        for i in range(6)
    ]
    pages = all_pages(client, "/api/v1/tokens", limit=4, principal=dev.name)
    listed = [t for page in pages for t in page]
    assert [len(p) for p in pages] == [4, 3]  # six minted + the one make_principal issued
    assert set(made) <= {t["id"] for t in listed}
    assert [t["created_at"] for t in listed] == sorted(
        (t["created_at"] for t in listed), reverse=True
    )
    # Same creation time for all: the id breaks the tie, and no row is lost or repeated.
    sessions = client.app.state.sessions  # type: ignore[attr-defined]
    with unit_of_work(sessions.write) as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.id.in_([uuid.UUID(i) for i in made]))
            .values(created_at=datetime(2026, 1, 1, tzinfo=UTC))
        )
    tied = [
        t["id"]
        for page in all_pages(client, "/api/v1/tokens", limit=2, principal=dev.name)
        for t in page
    ]
    assert sorted(tied) == sorted(t["id"] for t in listed)
    assert [i for i in tied if i in made] == sorted(made, key=uuid.UUID, reverse=True)


def test_publisher_pages_by_name(client: TestClient) -> None:
    ns = create_namespace(client)
    names = sorted(unique("pub") for _ in range(3))
    for name in names:
        body = {
            "name": name,
            "issuer": "https://token.actions.githubusercontent.com",
            "audience": "adapter-registry",
            "repository": f"acme/{name}",  # one binding per repository and workflow
            "repository_owner_id": "4242",
            "workflow_ref": f"acme/{name}/.github/workflows/train.yml",
            "principal": unique("ci"),
            "namespaces": [ns],
        }
        assert client.post("/api/v1/publishers", json=body).status_code == 201
    pages = all_pages(client, "/api/v1/publishers", limit=1)
    listed = [p["name"] for page in pages for p in page]
    assert all(len(page) == 1 for page in pages)
    assert listed == sorted(listed)
    assert [n for n in listed if n in names] == names


TIME_KEYED = ["/api/v1/tokens", "/api/v1/promotions"]
BAD_NAME_TOKENS = ["%%%", _forged([1]), _forged(["a", "b"])]


@pytest.mark.parametrize(
    ("url", "token"),
    [(u, t) for u in TIME_KEYED for t in BAD_TOKENS]
    + [("/api/v1/publishers", t) for t in BAD_NAME_TOKENS],
)
def test_foreign_page_tokens_are_refused(client: TestClient, url: str, token: str) -> None:
    r = client.get(url, params={"page_token": token})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_page_token"


def test_a_principals_page_costs_the_same_queries_whatever_its_size(client: TestClient) -> None:
    """Each principal's memberships come with the page (one query for all of them)."""
    namespaces = sorted(create_namespace(client) for _ in range(2))
    made = {make_principal(client, "viewer", namespaces[: i % 3]).name: i % 3 for i in range(4)}
    client.get("/api/v1/principals", params={"limit": 1})  # warm the token and policy caches
    sizes = {}
    for limit in (1, 4):
        with counted(client) as seen:
            page = client.get("/api/v1/principals", params={"limit": limit}).json()
        assert len(page["items"]) == limit
        sizes[limit] = len(seen)
    assert sizes[1] == sizes[4], sizes
    listed = {
        p["name"]: p["namespaces"]
        for page in all_pages(client, "/api/v1/principals", limit=3)
        for p in page
    }
    assert {name: listed[name] for name in made} == {
        name: namespaces[:n] for name, n in made.items()
    }


def test_decision_pages_newest_first(team: Team, fast_plans: None) -> None:
    """A deployment's controller decisions outlive any one page: every one is reachable."""
    c = canary(team)
    sessions = team.client.app.state.sessions  # type: ignore[attr-defined]
    tie = datetime(2026, 1, 1, tzinfo=UTC)
    with unit_of_work(sessions.write) as session:
        rollout_id = session.scalars(
            select(Rollout.id)
            .join(Deployment, Deployment.id == Rollout.deployment_id)
            .where(Deployment.name == c.deployment)
        ).one()
        for i in range(5):
            session.add(
                RolloutDecision(
                    rollout_id=rollout_id,
                    decided_at=tie if i < 3 else tie.replace(day=2 + i),
                    action="hold",
                    reason=f"test {i}",
                    step_index=0,
                    evidence={},
                )
            )
    url = f"/api/v1/deployments/{c.deployment}/decisions"
    walked = [d for page in all_pages(team.client, url, limit=2) for d in page]
    keys = [(d["decided_at"], uuid.UUID(d["id"])) for d in walked]
    assert len({d["id"] for d in walked}) == len(walked) >= 5
    assert keys == sorted(keys, reverse=True)
    assert {d["reason"] for d in walked} >= {f"test {i}" for i in range(5)}
