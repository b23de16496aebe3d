"""Pure parts of webhooks: event types, signatures, the SSRF guard, the retry schedule."""

from __future__ import annotations

import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from registry.errors import InvalidWebhookUrl, WebhookTargetBlocked
from registry.events import signing
from registry.events.catalog import EVENT_TYPES, event_type
from registry.events.outbox import backoff_delay
from registry.events.targets import AllowList, checked_addresses, parse_url
from registry.webhook_settings import WebhookSettings


class TestEventTypes:
    @pytest.mark.parametrize(
        ("action", "after", "expected"),
        [
            ("adapter.version.register", {"digest": "x"}, "version.registered"),
            ("adapter.version.register", {"imported_from": "s3://b/k"}, "version.imported"),
            ("adapter.version.archive", None, "version.archived"),
            ("evaluation.record", {}, "evaluation.recorded"),
            ("promotion.request", {}, "promotion.requested"),
            ("promotion.gates_overridden", {}, "promotion.overridden"),
            ("promotion.approve", {}, "promotion.approved"),
            ("promotion.rejected", {}, "promotion.rejected"),
            ("deployment.revision", {"reason": "promotion", "candidate": {}}, "rollout.started"),
            (
                "deployment.revision",
                {"reason": "promotion", "candidate": None},
                "rollout.completed",
            ),
            ("deployment.revision", {"reason": "step", "candidate": {}}, "rollout.stepped"),
            ("deployment.revision", {"reason": "step", "candidate": None}, "rollout.completed"),
            ("deployment.revision", {"reason": "automatic_rollback"}, "rollout.rolled_back"),
            ("deployment.revision", {"reason": "manual_rollback"}, "rollout.rolled_back"),
            ("deployment.revision", {"reason": "created"}, None),
            ("audit.checkpoint", {"seq": 7}, "audit.checkpoint_created"),
            ("token.create", {}, None),
        ],
    )
    def test_event_type_of_audit_action(
        self, action: str, after: dict[str, object] | None, expected: str | None
    ) -> None:
        assert event_type(action, after) == expected
        assert expected is None or expected in EVENT_TYPES


class TestSigning:
    def test_signature_verifies_with_standardwebhooks(self) -> None:
        secret = signing.new_secret()
        body = b'{"type":"version.registered"}'

        ts = int(time.time())
        headers = signing.headers([secret], "msg_1", ts, body)
        assert Webhook(secret).verify(body, headers) == {"type": "version.registered"}

    def test_forged_signature_fails(self) -> None:
        secret, other = signing.new_secret(), signing.new_secret()

        headers = signing.headers([other], "msg_1", int(time.time()), b"{}")
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(b"{}", headers)

    def test_rotation_sends_two_signatures_each_verifying(self) -> None:
        new, old = signing.new_secret(), signing.new_secret()

        headers = signing.headers([new, old], "msg_2", int(time.time()), b"{}")
        assert len(headers["webhook-signature"].split(" ")) == 2
        Webhook(new).verify(b"{}", headers)
        Webhook(old).verify(b"{}", headers)


def _no_dns(host: str, port: int) -> list[str]:
    raise AssertionError("an IP literal is not resolved")


class TestTargets:
    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1/x",
            "http://10.1.2.3/x",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]:8080/x",
            "http://[::ffff:127.0.0.1]/x",
            "http://0.0.0.0/x",
            "http://224.0.0.1/x",
            "http://100.64.0.1/x",
            "http://192.168.1.1/x",
        ],
    )
    def test_non_public_literals_are_blocked(self, url: str) -> None:
        with pytest.raises(WebhookTargetBlocked):
            checked_addresses(parse_url(url), AllowList(), _no_dns)

    def test_a_name_resolving_to_loopback_is_blocked(self) -> None:
        with pytest.raises(WebhookTargetBlocked):
            checked_addresses(parse_url("http://localhost:9/x"), AllowList())

    def test_one_private_answer_among_public_ones_blocks(self) -> None:
        def resolver(host: str, port: int) -> list[str]:
            return ["93.184.215.14", "10.0.0.1"]

        with pytest.raises(WebhookTargetBlocked):
            checked_addresses(parse_url("https://example.test/x"), AllowList(), resolver)

    def test_allow_list_permits_cidr_and_host(self) -> None:
        allow = AllowList.parse(["127.0.0.0/8", "internal.example"])
        assert checked_addresses(parse_url("http://127.0.0.1:1/x"), allow) == ["127.0.0.1"]
        addrs = checked_addresses(
            parse_url("http://internal.example/x"), allow, lambda h, p: ["10.0.0.5"]
        )
        assert addrs == ["10.0.0.5"]

    def test_public_literal_passes(self) -> None:
        assert checked_addresses(parse_url("https://93.184.215.14/h"), AllowList(), _no_dns)

    @pytest.mark.parametrize(
        "url",
        [
            "ftp://example.com/x",
            "file:///etc/passwd",
            "http://u:p@example.com/",
            "http:///x",
            "http://example.com/#frag",
            "",
            "http://exa mple.com/",
            "http://example.com:99999/",
        ],
    )
    def test_bad_urls_are_refused(self, url: str) -> None:
        with pytest.raises(InvalidWebhookUrl):
            parse_url(url)


class TestBackoff:
    def test_schedule_doubles_from_5s_and_caps_at_an_hour(self) -> None:
        s = WebhookSettings()
        delays = [backoff_delay(n, s) for n in range(1, 14)]
        assert delays[:4] == [5, 10, 20, 40]
        assert max(delays) == 3600
        assert delays[-1] == 3600
