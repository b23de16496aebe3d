"""``adapter-registry storage gc`` next to a live server: a grace window shorter than the longest
upload session (``REGISTRY_SERVER__UPLOAD_TTL_S``) would delete the bytes of pushes in flight,
so the real CLI refuses it (exit 2, ``usage``) unless ``--force``."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import httpx
import pytest

from registry.settings import ServerSettings
from tests.factories.catalog import create_namespace, register_base, sha256_hex, unique
from tests.fixtures.peft import PEFT_FIXTURES
from tests.fixtures.server import LiveServer

SRC = PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn"
DEFAULT_TTL = ServerSettings().upload_ttl_s


def gc_cli(server: LiveServer, *args: str, **env: str) -> tuple[int, Any]:
    """Run the real CLI in a subprocess on the live server's database and store."""
    done = subprocess.run(
        [sys.executable, "-m", "registry", "storage", "gc", *args, "--output", "json"],
        env={**server.env, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else None


def _client(server: LiveServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {server.token}"}
    )


@pytest.fixture
def in_flight(live_server: LiveServer) -> tuple[str, str, str]:
    """A namespace, a base, and an upload session whose files are staged but not registered."""
    with _client(live_server) as c:
        ns = create_namespace(c, unique("gc"))
        base = register_base(c, PEFT_FIXTURES / "bases" / "tiny-gpt2")
        upload = c.post("/api/v1/uploads", json={}).json()["id"]
        for p in SRC.iterdir():
            data = p.read_bytes()
            if p.name == "README.md":
                data += unique().encode()  # content of its own: a new blob for this test
            r = c.put(
                f"/api/v1/uploads/{upload}/files/{p.name}",
                content=data,
                headers={"X-Content-Digest": f"sha256:{sha256_hex(data)}"},
            )
            assert r.status_code == 201, r.text
    return ns, base, upload


def _register(server: LiveServer, ns: str, base: str, upload: str) -> httpx.Response:
    with _client(server) as c:
        return c.post(
            f"/api/v1/adapters/{ns}/bot/versions", json={"base": base, "upload_id": upload}
        )


class TestGraceBelowUploadLifetime:
    def test_grace_zero_is_refused_and_the_push_in_flight_survives(
        self, live_server: LiveServer, in_flight: tuple[str, str, str]
    ) -> None:
        code, body = gc_cli(live_server, "--grace-seconds", "0")

        assert code == 2
        assert body["error"] == "usage"
        assert body["context"] == {"grace_s": 0, "min_grace_s": DEFAULT_TTL}
        r = _register(live_server, *in_flight)
        assert r.status_code == 201, r.text

    def test_grace_from_settings_below_upload_lifetime_is_refused(
        self, live_server: LiveServer, in_flight: tuple[str, str, str]
    ) -> None:
        code, body = gc_cli(live_server, REGISTRY_STORAGE__GC_GRACE_S="60")

        assert code == 2
        assert body["context"] == {"grace_s": 60, "min_grace_s": DEFAULT_TTL}
        assert _register(live_server, *in_flight).status_code == 201

    def test_force_accepts_a_short_grace(
        self, live_server: LiveServer, in_flight: tuple[str, str, str]
    ) -> None:
        # --dry-run: shows what a forced run would take (the staged files of the push in
        # flight) without taking it from the other tests sharing this server.
        code, body = gc_cli(live_server, "--grace-seconds", "0", "--force", "--dry-run")

        assert code == 0, body
        assert body["dry_run"] is True
        assert body["staging_deleted"] >= len(list(SRC.iterdir()))
        assert _register(live_server, *in_flight).status_code == 201

    def test_grace_equal_to_upload_lifetime_is_accepted(self, live_server: LiveServer) -> None:
        code, body = gc_cli(
            live_server, "--grace-seconds", "600", "--dry-run", REGISTRY_SERVER__UPLOAD_TTL_S="600"
        )

        assert code == 0, body
        assert body["dry_run"] is True
