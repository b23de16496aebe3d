"""Promotion listings: every item carries its deployment, version ref and approvals, and a
page costs the same number of queries however many items it holds (no query per row)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from tests.factories.governance import create_deployment, decide, record_eval, request_promotion
from tests.governance.conftest import Team

BACKGROUND = {"routing-epoch", "rollout-controller", "audit-checkpointer"}


@contextmanager
def counted(team: Team) -> Iterator[list[str]]:
    engine = team.client.app.state.sessions.engine  # type: ignore[attr-defined]
    seen: list[str] = []

    def on_execute(*args: object) -> None:
        statement = str(args[2])
        # Not part of what a page costs: the server's background threads (the routing-epoch
        # poller), and the caller's token and the policy-set version, re-read on their own
        # clocks (cache lifetimes of seconds).
        if threading.current_thread().name in BACKGROUND:
            return
        if not any(t in statement for t in ("api_tokens", "policy_sets")):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)


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
        with counted(team) as seen:
            page = team.client.get(
                f"/api/v1/promotions?limit={limit}", headers=team.approver.headers
            ).json()
        assert len(page["items"]) == limit
        sizes[limit] = len(seen)
    assert sizes[1] == sizes[4], sizes
    items = {i["id"]: i for i in page["items"]}
    first = items[made[0]["id"]]
    assert first["deployment"] == deps[0]
    assert first["ref"] == v1
    assert [a["approver"] for a in first["approvals"]] == [team.approver.name]
    assert all(items[m["id"]]["approvals"] == [] for m in made[1:])
    assert {i["state"] for i in page["items"]} == {"completed", "pending"}
