"""``adapter-registry webhooks ...`` against a live server, a live receiver: create, list,
show, deliveries, redeliver (same webhook-id), rotate-secret, disable; exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any

from tests.events.conftest import Receiver, Registry, register_version, setup_namespace, wait_for


def cli(registry: Registry, *args: str) -> tuple[int, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env.update(REGISTRY_URL=registry.urls[-1], REGISTRY_TOKEN=registry.token)
    done = subprocess.run(
        [sys.executable, "-m", "registry", *args, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else done.stderr


def test_webhooks_commands(registry: Registry, receiver: Receiver) -> None:
    registry.start()
    code, created = cli(registry, "webhooks", "create", receiver.url, "-e", "version.registered")
    assert code == 0, created
    assert created["secret"].startswith("whsec_")
    hook = created["id"]
    code, listed = cli(registry, "webhooks", "list")
    assert code == 0
    assert [w["id"] for w in listed["items"]] == [hook]
    code, shown = cli(registry, "webhooks", "show", hook)
    assert code == 0
    assert "secret" not in shown
    with registry.client() as c:
        register_version(c, setup_namespace(c))
    (first,) = wait_for(receiver.accepted, what="the event")
    code, deliveries = cli(registry, "webhooks", "deliveries", hook)
    assert code == 0
    (delivery,) = deliveries["items"]
    assert delivery["status"] == "delivered"
    code, again = cli(registry, "webhooks", "redeliver", hook, delivery["id"])
    assert code == 0
    assert again["status"] == "pending"
    second = wait_for(lambda: receiver.accepted()[1:], what="the redelivery")[0]
    assert second["headers"]["webhook-id"] == first["headers"]["webhook-id"]
    code, rotated = cli(registry, "webhooks", "rotate-secret", hook, "--grace", "60")
    assert code == 0
    assert rotated["secret"] != created["secret"]
    code, disabled = cli(registry, "webhooks", "disable", hook, "--reason", "done")
    assert code == 0
    assert disabled["enabled"] is False


def test_webhooks_exit_codes(registry: Registry) -> None:
    registry.start(REGISTRY_WEBHOOKS__ALLOW_PRIVATE_TARGETS="[]")
    code, _ = cli(registry, "webhooks", "show", str(uuid.uuid4()))
    assert code == 4
    code, _ = cli(
        registry, "webhooks", "create", "http://127.0.0.1:9/x", "-e", "version.registered"
    )
    assert code == 6
    code, _ = cli(registry, "webhooks", "create", "https://93.184.215.14/x", "-e", "nope")
    assert code == 6
