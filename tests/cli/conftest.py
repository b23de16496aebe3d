"""CLI test fixtures: a CliRunner, the shared PEFT fixtures, and a fake registry server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

import registry.client
from tests.fixtures.fake_registry import FakeRegistry

ROOT = Path(__file__).resolve().parents[2]
PEFT_FIXTURES = (ROOT / ".." / "shared" / "fixtures" / "peft").resolve()


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeRegistry:
    """Every ``RegistryClient`` the CLI builds talks to this fake (no sleeping on retries)."""
    server = FakeRegistry()

    class FakeClient(registry.client.RegistryClient):
        def __init__(
            self, base_url: str, token: str | None = None, timeout: float = 5.0, **_kwargs: Any
        ) -> None:
            super().__init__(
                base_url, token, timeout, transport=server.transport(), sleep=lambda _s: None
            )

    monkeypatch.setattr(registry.client, "RegistryClient", FakeClient)
    return server


def respond(status: int, **body: Any) -> httpx.Response:
    return httpx.Response(status, json=body)
