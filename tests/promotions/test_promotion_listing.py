"""Promotion listings: every item carries its deployment, version ref and approvals, and a
page costs the same number of queries however many items it holds (no query per row)."""

from __future__ import annotations

from tests.factories.governance import create_deployment, decide, record_eval, request_promotion
from tests.fixtures.governance import Team, counted


def test_a_page_costs_the_same_queries_whatever_its_size(team: Team) -> None:
    v1 = team.push()
    record_eval(team.client, team.dev, v1, 0.8)
    deps = [
        create_deployment(team.client, team.operator, team.base, team.adapter_ref) for _ in range(4)
    ]
    made = [request_promotion(team.client, team.dev, v1, d).json() for d in deps]
    assert decide(team.client, team.approver, made[0]["id"], "approve").json()["state"] == (
        "completed"
    )
    # Warm the caller's token and policy caches so both listings start alike.
    team.client.get("/api/v1/promotions?limit=1", headers=team.approver.headers)
    sizes = {}
    for limit in (1, 4):
        with counted(team.client) as seen:
            page = team.client.get(
                f"/api/v1/promotions?limit={limit}", headers=team.approver.headers
            ).json()
        assert len(page["items"]) == limit
        sizes[limit] = list(seen)
    assert len(sizes[1]) == len(sizes[4]), sizes
    items = {i["id"]: i for i in page["items"]}
    first = items[made[0]["id"]]
    assert first["deployment"] == deps[0]
    assert first["ref"] == v1
    assert [a["approver"] for a in first["approvals"]] == [team.approver.name]
    assert all(items[m["id"]]["approvals"] == [] for m in made[1:])
    assert {i["state"] for i in page["items"]} == {"completed", "pending"}
