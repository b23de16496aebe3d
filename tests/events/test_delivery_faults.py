"""Webhook delivery through failures: receiver down, server killed, two replicas, 410, secret
rotation, an owner who lost access. Real processes; bounded polling, no timed assertions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from standardwebhooks.webhooks import Webhook

from tests.events.conftest import (
    Receiver,
    Registry,
    register_version,
    setup_namespace,
    subscribe,
    wait_for,
)
from tests.events.test_delivery_e2e import FLOW_TYPES, _run_flow, _types
from tests.factories.catalog import push
from tests.factories.governance import make_principal
from tests.fixtures.db import dialect
from tests.fixtures.peft import PEFT_FIXTURES

FAST_RETRY = {"REGISTRY_WEBHOOKS__BACKOFF_BASE_S": "0.2", "REGISTRY_WEBHOOKS__BACKOFF_MAX_S": "1"}


def _ids(requests: list[dict[str, Any]]) -> list[str]:
    return [r["headers"]["webhook-id"] for r in requests]


def _deliveries(registry: Registry, sub_id: str) -> list[dict[str, Any]]:
    with registry.client() as c:
        r = c.get(f"/api/v1/webhooks/{sub_id}/deliveries", params={"limit": 100})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return sorted(items, key=lambda d: d["audit_seq"])


class TestReceiverDown:
    def test_events_arrive_in_order_with_unchanged_ids_after_the_receiver_returns(
        self, registry: Registry, receiver: Receiver
    ) -> None:
        registry.start(**FAST_RETRY)
        with registry.client() as c:
            sub = subscribe(c, receiver.url)
        receiver.stop()
        _run_flow(registry)
        wait_for(
            lambda: any(d["attempts"] >= 2 for d in _deliveries(registry, sub["id"])),
            what="failed attempts while the receiver is down",
        )
        before = _deliveries(registry, sub["id"])
        assert all(d["status"] == "pending" for d in before)
        # Order: only the head is ever attempted while it fails.
        assert [d["attempts"] > 0 for d in before] == [True] + [False] * (len(before) - 1)
        receiver.start()
        got = wait_for(
            lambda: len(receiver.accepted()) >= len(FLOW_TYPES) and receiver.accepted(),
            what="every event after the receiver came back",
        )
        assert _types(got) == FLOW_TYPES
        assert _ids(got) == [d["webhook_id"] for d in before]
        for r in got:
            Webhook(sub["secret"]).verify(r["body"], r["headers"])


class TestServerKilled:
    def test_events_committed_before_a_sigkill_are_all_sent_after_restart(
        self, registry: Registry, receiver: Receiver
    ) -> None:
        # A long poll: the first server commits the events but never gets to send them.
        registry.start(REGISTRY_WEBHOOKS__POLL_S="600")
        with registry.client() as c:
            subscribe(c, receiver.url)
        _run_flow(registry)
        registry.kill()
        assert receiver.requests() == []
        registry.start()
        got = wait_for(
            lambda: len(receiver.accepted()) >= len(FLOW_TYPES) and receiver.accepted(),
            what="the events after the restart",
        )
        assert _types(got) == FLOW_TYPES

    def test_a_send_cut_by_sigkill_is_retried_with_the_same_id(
        self, registry: Registry, receiver: Receiver
    ) -> None:
        registry.start(REGISTRY_WEBHOOKS__CLAIM_LEASE_S="1")
        with registry.client() as c:
            sub = subscribe(c, receiver.url, ["version.registered"])
            receiver.mode("fail")  # the first attempt is answered 500: the claim stays leased
            flow = setup_namespace(c)
            register_version(c, flow)
        wait_for(receiver.requests, what="the first attempt")
        registry.kill()
        receiver.mode("ok")
        registry.start(REGISTRY_WEBHOOKS__CLAIM_LEASE_S="1", **FAST_RETRY)
        (got,) = wait_for(receiver.accepted, what="the retried event")
        assert got["headers"]["webhook-id"] == receiver.requests()[0]["headers"]["webhook-id"]
        Webhook(sub["secret"]).verify(got["body"], got["headers"])


class TestReplicas:
    def test_two_replicas_deliver_each_event_exactly_once(
        self, registry: Registry, receiver: Receiver
    ) -> None:
        if dialect() != "postgresql":
            pytest.skip("replicas share a PostgreSQL database (SQLite: one server per file)")
        registry.start(REGISTRY_WEBHOOKS__POLL_S="0.02")
        registry.start(REGISTRY_WEBHOOKS__POLL_S="0.02")
        with registry.client(index=0) as c:
            subscribe(c, receiver.url, ["version.registered"])
            flow = setup_namespace(c)
        versions = 8
        for n in range(versions):
            with registry.client(index=n % 2) as c:
                r = push(
                    c,
                    flow.namespace,
                    f"bot{n}",
                    PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn",
                    flow.base,
                )
                assert r.status_code == 201, r.text
        got = wait_for(
            lambda: len(receiver.accepted()) >= versions and receiver.accepted(),
            what="every version event",
        )
        ids = _ids(receiver.requests())
        assert len(ids) == len(set(ids)) == versions
        seqs = [json.loads(r["body"])["audit_seq"] for r in got]
        assert seqs == sorted(seqs)


class TestGone:
    def test_410_disables_the_subscription(self, registry: Registry, receiver: Receiver) -> None:
        registry.start()
        receiver.mode("gone")
        with registry.client() as c:
            sub = subscribe(c, receiver.url, ["version.registered"])
            flow = setup_namespace(c)
            register_version(c, flow)

            def disabled() -> dict[str, Any] | None:
                body: dict[str, Any] = c.get(f"/api/v1/webhooks/{sub['id']}").json()
                return None if body["enabled"] else body

            body = wait_for(disabled, what="the subscription disabled")
            assert "410" in body["disabled_reason"]
            register_version(c, flow, "other")
        # Nothing more is attempted; the undelivered event stays pending.
        assert len(receiver.requests()) == 1
        assert [d["status"] for d in _deliveries(registry, sub["id"])] == ["pending"]


class TestRotation:
    def test_rotated_secret_sends_two_signatures_until_the_grace_ends(
        self, registry: Registry, receiver: Receiver
    ) -> None:
        registry.start()
        with registry.client() as c:
            sub = subscribe(c, receiver.url, ["version.registered"])
            r = c.post(f"/api/v1/webhooks/{sub['id']}/rotate-secret", json={"grace_s": 3600})
            assert r.status_code == 200, r.text
            new = r.json()["secret"]
            assert new != sub["secret"]
            assert "secret" not in c.get(f"/api/v1/webhooks/{sub['id']}").json()
            flow = setup_namespace(c)
            register_version(c, flow)
            (got,) = wait_for(receiver.accepted, what="the event")
            assert len(got["headers"]["webhook-signature"].split(" ")) == 2
            Webhook(new).verify(got["body"], got["headers"])
            Webhook(sub["secret"]).verify(got["body"], got["headers"])
            r = c.post(f"/api/v1/webhooks/{sub['id']}/rotate-secret", json={"grace_s": 0})
            newest = r.json()["secret"]
            register_version(c, flow, "other")
            second = wait_for(lambda: receiver.accepted()[1:], what="the second event")[0]
            assert len(second["headers"]["webhook-signature"].split(" ")) == 1
            Webhook(newest).verify(second["body"], second["headers"])


class TestWithheld:
    def test_owner_losing_read_gets_deliveries_withheld(
        self, registry: Registry, receiver: Receiver
    ) -> None:
        registry.start()
        with registry.client() as admin:
            flow = setup_namespace(admin)
            dev = make_principal(admin, "developer", [flow.namespace])  # type: ignore[arg-type]
            with registry.client(dev.token) as c:
                sub = subscribe(c, receiver.url, ["version.registered"], flow.namespace)
            register_version(admin, flow)
            wait_for(receiver.accepted, what="the first event")
            engine = create_engine(registry.database_url)
            try:
                with engine.begin() as conn:
                    conn.execute(
                        text(
                            "DELETE FROM principal_namespaces WHERE principal_id = "
                            "(SELECT id FROM principals WHERE name = :n)"
                        ),
                        {"n": dev.name},
                    )
            finally:
                engine.dispose()
            register_version(admin, flow, "other")
            wait_for(
                lambda: (
                    [d["status"] for d in _deliveries(registry, sub["id"])]
                    == ["delivered", "withheld"]
                ),
                what="the second delivery withheld",
            )
        assert len(receiver.requests()) == 1
