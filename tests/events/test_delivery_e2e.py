"""Webhooks end to end: a registry server process, a receiver process, real HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from registry.events import signing
from tests.events.conftest import (
    Receiver,
    Registry,
    promote,
    register_version,
    setup_namespace,
    subscribe,
    wait_for,
)
from tests.factories.catalog import unique
from tests.fixtures.app import bootstrap

FLOW_TYPES = [
    "version.registered",
    "evaluation.recorded",
    "promotion.requested",
    "promotion.approved",
    "rollout.completed",
]


def _types(requests: list[dict[str, Any]]) -> list[str]:
    return [json.loads(r["body"])["type"] for r in requests]


def _run_flow(registry: Registry) -> None:
    approver = bootstrap(registry.database_url, unique("approver"))
    with registry.client() as c, registry.client(approver) as a:
        flow = setup_namespace(c)
        promote(c, a, flow, register_version(c, flow))


class TestFlow:
    def test_flow_yields_the_event_sequence_signed(
        self, registry: Registry, receiver: Receiver
    ) -> None:
        registry.start()
        with registry.client() as c:
            sub = subscribe(c, receiver.url)
        _run_flow(registry)
        got = wait_for(
            lambda: len(receiver.accepted()) >= len(FLOW_TYPES) and receiver.accepted(),
            what="the flow's events",
            timeout=20,
        )
        assert _types(got) == FLOW_TYPES
        seqs = [json.loads(r["body"])["audit_seq"] for r in got]
        assert seqs == sorted(seqs)
        verifier = Webhook(sub["secret"])
        for r in got:
            payload = verifier.verify(r["body"], r["headers"])
            assert set(payload) == {"type", "timestamp", "data", "audit_seq", "audit_hash"}
            assert r["headers"]["webhook-id"].startswith("msg_")
        assert len({r["headers"]["webhook-id"] for r in got}) == len(got)

    def test_forged_or_tampered_messages_fail_verification(
        self, registry: Registry, receiver: Receiver
    ) -> None:
        registry.start()
        with registry.client() as c:
            sub = subscribe(c, receiver.url, ["version.registered"])
            flow = setup_namespace(c)
            register_version(c, flow)
        (got,) = wait_for(receiver.accepted, what="one event")
        with pytest.raises(WebhookVerificationError):
            Webhook(signing.new_secret()).verify(got["body"], got["headers"])
        with pytest.raises(WebhookVerificationError):
            Webhook(sub["secret"]).verify(got["body"].replace("version", "versiom"), got["headers"])
