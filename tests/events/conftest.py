"""Webhook test rig: a real receiver process, registry servers over a database of the test's
own, and polling helpers (bounded waits, no timed assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry.db import migrate
from tests.factories.catalog import create_namespace, push, register_base, unique
from tests.factories.governance import auth
from tests.fixtures.app import bootstrap
from tests.fixtures.db import drop_database, new_database_url
from tests.fixtures.peft import PEFT_FIXTURES
from tests.fixtures.server import free_port, server_env, start_server, stop_server

RECEIVER = Path(__file__).with_name("receiver.py")
LOOPBACK_ALLOWED = '["127.0.0.1/32"]'


def wait_for(check: Callable[[], Any], *, timeout: float = 60, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@dataclass
class Receiver:
    port: int
    log: Path
    mode_file: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(RECEIVER), str(self.port), str(self.log), str(self.mode_file)]
        )

        def up() -> bool:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/", timeout=1)
            except httpx.HTTPError:
                return False
            return True

        wait_for(up, timeout=20, what="the receiver to listen")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def mode(self, mode: str) -> None:
        self.mode_file.write_text(mode)

    def requests(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def accepted(self) -> list[dict[str, Any]]:
        return [r for r in self.requests() if r["status"] < 300]


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    rec = Receiver(free_port(), tmp_path / "received.jsonl", tmp_path / "mode")
    rec.mode("ok")
    rec.start()
    try:
        yield rec
    finally:
        rec.stop()


@pytest.fixture
def own_database(tmp_path: Path) -> Iterator[str]:
    """A migrated database of the test's own (webhook cursors see only this test's events)."""
    url = new_database_url(tmp_path, "registry_events")
    try:
        migrate.upgrade(url)
        yield url
    finally:
        drop_database(url)


@dataclass
class Registry:
    """Registry server processes over one database, with webhook delivery on."""

    database_url: str
    tmp: Path
    extra: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    _token: str | None = None

    def start(self, **settings: str) -> str:
        env = server_env(
            self.database_url,
            self.tmp / "artifacts",
            **{
                "REGISTRY_CONTROLLER__ENABLED": "false",
                "REGISTRY_WEBHOOKS__ENABLED": "true",
                "REGISTRY_WEBHOOKS__POLL_S": "0.1",
                "REGISTRY_WEBHOOKS__ALLOW_PRIVATE_TARGETS": LOOPBACK_ALLOWED,
                **self.extra,
                **settings,
            },
        )
        proc, url = start_server(env, self.tmp / f"server-{len(self.procs)}.log")
        self.procs.append(proc)
        self.urls.append(url)
        return url

    @property
    def token(self) -> str:
        if self._token is None:
            self._token = bootstrap(self.database_url, unique("admin"))
        return self._token

    def client(self, token: str | None = None, index: int = -1) -> httpx.Client:
        return httpx.Client(
            base_url=self.urls[index], headers=auth(token or self.token), timeout=60
        )

    def kill(self, index: int = -1) -> None:
        self.procs[index].kill()
        self.procs[index].wait()

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                stop_server(proc)


@pytest.fixture
def registry(own_database: str, tmp_path: Path) -> Iterator[Registry]:
    reg = Registry(own_database, tmp_path)
    try:
        yield reg
    finally:
        reg.stop_all()


@dataclass
class Flow:
    namespace: str
    adapter: str
    base: str
    deployment: str


def setup_namespace(c: httpx.Client) -> Flow:
    ns = create_namespace(c)
    base = register_base(c, PEFT_FIXTURES / "bases" / "tiny-gpt2", name=unique("gpt2"))
    return Flow(ns, "bot", base, unique("dep"))


def register_version(c: httpx.Client, flow: Flow, adapter: str | None = None) -> str:
    """Version 1 of ``adapter`` (default: the flow's; each adapter takes the content once)."""
    adapter = adapter or flow.adapter
    r = push(
        c,
        flow.namespace,
        adapter,
        PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn",
        flow.base,
    )
    assert r.status_code == 201, r.text
    return f"{flow.namespace}/{adapter}@v{r.json()['version']}"


def promote(c: httpx.Client, approver: httpx.Client, flow: Flow, ref: str) -> str:
    """Evaluate, create the deployment, request (gates overridden) and approve a promotion."""
    r = c.post(
        f"/api/v1/adapters/{ref.replace('@', '/versions/')}/evaluations",
        json={"suite": "qa", "metric": "acc", "value": 0.9},
    )
    assert r.status_code == 201, r.text
    r = c.post(
        "/api/v1/deployments",
        json={
            "name": flow.deployment,
            "base": flow.base,
            "adapter": f"{flow.namespace}/{flow.adapter}",
        },
    )
    assert r.status_code == 201, r.text
    r = c.post(
        "/api/v1/promotions",
        json={"ref": ref, "deployment": flow.deployment, "override_reason": "webhook test"},
    )
    assert r.status_code == 201, r.text
    promotion = str(r.json()["id"])
    r = approver.post(f"/api/v1/promotions/{promotion}/approve")
    assert r.status_code == 200, r.text
    return promotion


def subscribe(
    c: httpx.Client, url: str, types: list[str] | None = None, namespace: str | None = None
) -> dict[str, Any]:
    from registry.events.catalog import EVENT_TYPES

    r = c.post(
        "/api/v1/webhooks",
        json={"url": url, "event_types": types or list(EVENT_TYPES), "namespace": namespace},
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body
