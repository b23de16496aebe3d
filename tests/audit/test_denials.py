"""The per-principal limit on ``authz.denied`` events (issue 11, point 12): the limiter's
windows with a controlled clock, then a flood of refused calls over the real HTTP app."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from registry.audit.denials import SUPPRESSED_ACTION, DenialLimiter
from registry.audit.service import AuditEntry
from tests.factories.catalog import unique
from tests.factories.governance import make_principal


class Clock:
    """A clock the test moves by hand (so windows never depend on how fast the test runs)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def denied(actor: str) -> AuditEntry:
    return AuditEntry(
        action="authz.denied",
        resource="namespace:x",
        actor=actor,
        actor_id=uuid.uuid5(uuid.NAMESPACE_DNS, actor),
        decision={"allowed": False, "action": "create_namespace", "policies": ["default-deny"]},
    )


class TestLimiter:
    def test_limit_then_one_summary_then_nothing(self) -> None:
        counted: list[int] = []
        limiter = DenialLimiter(
            limit=3, window_s=60, clock=Clock(), on_suppressed=lambda: counted.append(1)
        )

        admitted = [limiter.admit(denied("mallory")) for _ in range(10)]

        assert [a.action if a else None for a in admitted] == [
            "authz.denied",
            "authz.denied",
            "authz.denied",
            SUPPRESSED_ACTION,
            *[None] * 6,
        ]
        summary = admitted[3]
        assert summary is not None
        assert summary.actor == "mallory"
        assert summary.after is not None
        assert summary.after["limit"] == 3
        assert len(counted) == 7

    def test_a_new_window_admits_again(self) -> None:
        clock = Clock()
        limiter = DenialLimiter(limit=2, window_s=60, clock=clock)
        for _ in range(5):
            limiter.admit(denied("mallory"))

        clock.now += 60

        first = limiter.admit(denied("mallory"))
        assert first is not None
        assert first.action == "authz.denied"

    def test_principals_have_windows_of_their_own(self) -> None:
        limiter = DenialLimiter(limit=1, window_s=60, clock=Clock())
        assert limiter.admit(denied("mallory")) is not None
        assert limiter.admit(denied("mallory")) is not None  # the summary
        assert limiter.admit(denied("mallory")) is None

        alice = limiter.admit(denied("alice"))
        assert alice is not None
        assert alice.action == "authz.denied"

    @pytest.mark.parametrize(("limit", "window_s"), [(0, 60.0), (1, 0.0)])
    def test_settings_out_of_range_are_refused(self, limit: int, window_s: float) -> None:
        with pytest.raises(ValueError, match="limit"):
            DenialLimiter(limit=limit, window_s=window_s)


@pytest.fixture
def small_limit(client: TestClient) -> Iterator[DenialLimiter]:
    """The app's limiter replaced by one of 5 events per hour (the window cannot end during
    the test, however slow the machine), then restored."""
    state = client.app.state  # type: ignore[attr-defined]
    before = state.denials
    state.denials = DenialLimiter(
        limit=5, window_s=3600, on_suppressed=state.metrics.denials_suppressed.inc
    )
    try:
        yield state.denials
    finally:
        state.denials = before


def suppressed_total(client: TestClient) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("registry_audit_denials_suppressed_total "):
            return float(line.split()[1])
    return 0.0


def test_flood_of_denied_calls_writes_a_bounded_number_of_events(
    client: TestClient, small_limit: DenialLimiter
) -> None:
    dev = make_principal(client, "developer", [])
    before = suppressed_total(client)

    answers = [
        client.post("/api/v1/namespaces", json={"name": unique("ns")}, headers=dev.headers)
        for _ in range(40)
    ]

    assert {(r.status_code, r.json()["error"]) for r in answers} == {(403, "policy_denied")}
    events = client.get(
        "/api/v1/audit/events", params={"actor": dev.name, "action": "authz.", "limit": 500}
    ).json()["items"]
    actions = [e["action"] for e in events]
    assert actions == ["authz.denied"] * 5 + [SUPPRESSED_ACTION]
    assert events[-1]["after"]["limit"] == 5
    assert suppressed_total(client) - before == 35
    assert client.get("/api/v1/audit/verify").json()["ok"] is True
