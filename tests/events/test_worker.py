"""The delivery worker driven round by round with a test clock: the retry schedule is stored
in the database, ordering holds, a target that turns private is refused at connect time."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from registry.access.policy_sets import PolicyHolder
from registry.audit.service import AuditEntry, append
from registry.auth.models import Principal, PrincipalKind, Role
from registry.db.session import Sessions, unit_of_work
from registry.events.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from registry.events.worker import WebhookWorker
from registry.policy.loader import default_policy_dir
from registry.principals.repository import PrincipalRepository
from registry.webhook_settings import WebhookSettings
from tests.events.conftest import Receiver

T0 = datetime(2030, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _subscribe(
    sessions: Sessions,
    url: str,
    *,
    role: Role = Role.admin,
    types: tuple[str, ...] = ("version.registered",),
) -> uuid.UUID:
    with unit_of_work(sessions.write) as session:
        owner = PrincipalRepository(session).add(
            Principal(name=f"owner-{uuid.uuid4().hex[:8]}", kind=PrincipalKind.human, role=role)
        )
        sub = WebhookSubscription(
            url=url,
            event_types=list(types),
            owner_id=owner.id,
            secret="whsec_" + "A" * 43 + "=",
            enabled=True,
            cursor=0,
        )
        session.add(sub)
        session.flush()
        return sub.id


def _register_events(sessions: Sessions, count: int) -> None:
    with unit_of_work(sessions.write) as session:
        for n in range(count):
            append(
                session,
                AuditEntry(
                    action="adapter.version.register",
                    resource=f"adapter:acme/bot{n}@v1",
                    after={"digest": f"sha256:{n}"},
                ),
            )


def _deliveries(sessions: Sessions) -> list[WebhookDelivery]:
    with unit_of_work(sessions.read) as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.audit_seq)))


def _worker(sessions: Sessions, clock: Clock, **settings: object) -> WebhookWorker:
    return WebhookWorker(
        sessions,
        PolicyHolder(default_policy_dir()),
        WebhookSettings.model_validate({"allow_private_targets": ["127.0.0.1/32"], **settings}),
        clock=clock,
    )


class TestRetrySchedule:
    def test_backoff_is_stored_and_a_delivery_fails_after_a_day(
        self, sessions: Sessions, receiver: Receiver
    ) -> None:
        receiver.mode("fail")
        clock = Clock()
        worker = _worker(sessions, clock)
        _subscribe(sessions, receiver.url)
        _register_events(sessions, 2)
        delays = []
        for _ in range(5):
            assert worker.round() == 1
            head = _deliveries(sessions)[0]
            delays.append((head.next_attempt_at - clock.now).total_seconds())
            assert worker.round() == 0  # not due yet: nothing is sent early
            clock.now = head.next_attempt_at
        assert delays == [5, 10, 20, 40, 80]
        first, second = _deliveries(sessions)
        assert (first.attempts, second.attempts) == (5, 0)  # the second waits its turn
        assert first.first_attempt_at == T0
        seqs = {json.loads(r["body"])["audit_seq"] for r in receiver.requests()}
        assert seqs == {first.audit_seq}
        # A day after the first attempt the next failure gives up, and the queue moves on.
        clock.now = T0 + timedelta(hours=24)
        worker.round()
        first, second = _deliveries(sessions)
        assert first.status == DeliveryStatus.failed
        receiver.mode("ok")
        worker.round()
        assert _deliveries(sessions)[1].status == DeliveryStatus.delivered

    def test_the_delay_is_capped_at_an_hour(self, sessions: Sessions, receiver: Receiver) -> None:
        receiver.mode("fail")
        clock = Clock()
        worker = _worker(sessions, clock)
        _subscribe(sessions, receiver.url)
        _register_events(sessions, 1)
        delay = 0.0
        for _ in range(12):
            worker.round()
            head = _deliveries(sessions)[0]
            delay = (head.next_attempt_at - clock.now).total_seconds()
            clock.now = head.next_attempt_at
        assert delay == 3600


class TestConnectTimeGuard:
    def test_a_loopback_target_without_the_allow_list_is_never_contacted(
        self, sessions: Sessions, receiver: Receiver
    ) -> None:
        clock = Clock()
        _subscribe(sessions, receiver.url)  # as if created while the allow-list permitted it
        _register_events(sessions, 1)
        worker = _worker(sessions, clock, allow_private_targets=[])
        assert worker.round() == 1
        (row,) = _deliveries(sessions)
        assert row.status == DeliveryStatus.pending
        assert (row.last_error or "").startswith("webhook_target_blocked")
        assert receiver.requests() == []

    def test_dns_rebinding_to_loopback_is_refused(
        self, sessions: Sessions, receiver: Receiver
    ) -> None:
        """The host resolved to a public address when it was checked at creation; at connect
        time it resolves to loopback: refused (the allow-list names no host)."""
        clock = Clock()
        _subscribe(sessions, f"http://rebind.example:{receiver.port}/hook")
        _register_events(sessions, 1)
        worker = WebhookWorker(
            sessions,
            PolicyHolder(default_policy_dir()),
            WebhookSettings(),
            clock=clock,
            resolver=lambda host, port: ["127.0.0.1"],
        )
        worker.round()
        (row,) = _deliveries(sessions)
        assert (row.last_error or "").startswith("webhook_target_blocked")
        assert receiver.requests() == []

    def test_the_request_goes_to_the_checked_address(
        self, sessions: Sessions, receiver: Receiver
    ) -> None:
        clock = Clock()
        _subscribe(sessions, f"http://hooks.internal:{receiver.port}/hook")
        _register_events(sessions, 1)
        worker = WebhookWorker(
            sessions,
            PolicyHolder(default_policy_dir()),
            WebhookSettings(allow_private_targets=["hooks.internal"]),
            clock=clock,
            resolver=lambda host, port: ["127.0.0.1"],
        )
        worker.round()
        (row,) = _deliveries(sessions)
        assert row.status == DeliveryStatus.delivered
        (got,) = receiver.requests()
        assert got["headers"]["host"] == f"hooks.internal:{receiver.port}"


class TestSeveralSubscriptions:
    def test_each_subscription_gets_every_event_in_its_own_order(
        self, sessions: Sessions, receiver: Receiver
    ) -> None:
        clock = Clock()
        worker = _worker(sessions, clock)
        first, second = _subscribe(sessions, receiver.url), _subscribe(sessions, receiver.url)
        _register_events(sessions, 3)
        while worker.round():
            pass
        rows = _deliveries(sessions)
        assert {r.status for r in rows} == {DeliveryStatus.delivered}
        for sub in (first, second):
            assert len([r for r in rows if r.subscription_id == sub]) == 3
        by_id = {r.webhook_id: r for r in rows}
        for sub in (first, second):
            got = [
                by_id[r["headers"]["webhook-id"]].audit_seq
                for r in receiver.requests()
                if by_id[r["headers"]["webhook-id"]].subscription_id == sub
            ]
            assert got == sorted(got)
            assert len(got) == 3


class TestCheckpointEvents:
    def test_a_checkpoint_reaches_those_who_may_read_the_audit_log(
        self, sessions: Sessions, receiver: Receiver
    ) -> None:
        from registry.audit.checkpoint_events import record

        worker = _worker(sessions, Clock())
        types = ("audit.checkpoint_created",)
        admin = _subscribe(sessions, receiver.url, types=types)
        developer = _subscribe(sessions, receiver.url, role=Role.developer, types=types)
        with unit_of_work(sessions.write) as session:
            record(session, {"seq": 1, "hash": "ab" * 32, "key_id": "k", "at": "t", "name": "n"})
        while worker.round():
            pass
        status = {r.subscription_id: r.status for r in _deliveries(sessions)}
        assert status == {admin: DeliveryStatus.delivered, developer: DeliveryStatus.withheld}
        [sent] = receiver.requests()
        body = json.loads(sent["body"])
        assert body["type"] == "audit.checkpoint_created"
        assert body["data"]["resource"] == "audit-checkpoint:1"
        assert body["data"]["details"]["hash"] == "ab" * 32
