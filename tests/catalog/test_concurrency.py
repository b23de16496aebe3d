"""Concurrent pushes against a real server process: numbering under the adapter row lock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.factories.catalog import create_namespace, register_base, sha256_hex, unique
from tests.fixtures.peft import PEFT_FIXTURES
from tests.fixtures.server import LiveServer

PUSHES = 20
SRC = PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn"


def _client(server: LiveServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {server.token}"}
    )


def _push(
    server: LiveServer,
    ns: str,
    name: str,
    files: dict[str, bytes],
    base: str,
    key: str | None = None,
) -> httpx.Response:
    with _client(server) as c:
        upload = c.post("/api/v1/uploads", json={}).json()["id"]
        for fname, data in files.items():
            r = c.put(
                f"/api/v1/uploads/{upload}/files/{fname}",
                content=data,
                headers={"X-Content-Digest": f"sha256:{sha256_hex(data)}"},
            )
            assert r.status_code == 201, r.text
        headers = {"Idempotency-Key": key} if key else {}
        return c.post(
            f"/api/v1/adapters/{ns}/{name}/versions",
            json={"base": base, "upload_id": upload},
            headers=headers,
        )


@pytest.fixture
def setup(live_server: LiveServer) -> tuple[str, str]:
    with _client(live_server) as c:
        ns = create_namespace(c, unique("conc"))
        base = register_base(c, PEFT_FIXTURES / "bases" / "tiny-gpt2")
    return ns, base


def _variant(i: int) -> dict[str, bytes]:
    files = {p.name: p.read_bytes() for p in SRC.iterdir()}
    files["README.md"] = f"variant {i}\n".encode()
    return files


def _run(n: int, fn: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    barrier = threading.Barrier(n)

    def go(i: int) -> httpx.Response:
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(go, range(n)))


class TestConcurrentPushes:
    def test_twenty_pushes_get_distinct_gapless_versions(
        self, live_server: LiveServer, setup: tuple[str, str]
    ) -> None:
        ns, base = setup
        results = _run(PUSHES, lambda i: _push(live_server, ns, "bot", _variant(i), base))
        assert [r.status_code for r in results] == [201] * PUSHES, [r.text for r in results]
        versions = sorted(r.json()["version"] for r in results)
        assert versions == list(range(1, PUSHES + 1))
        with _client(live_server) as c:
            assert c.get(f"/api/v1/adapters/{ns}/bot").json()["latest_version"] == PUSHES
            listed = c.get(f"/api/v1/adapters/{ns}/bot/versions", params={"limit": 100}).json()
        assert sorted(v["version"] for v in listed["items"]) == versions

    def test_identical_content_registers_once(
        self, live_server: LiveServer, setup: tuple[str, str]
    ) -> None:
        ns, base = setup
        results = _run(8, lambda _i: _push(live_server, ns, "same", _variant(0), base))
        codes = sorted(r.status_code for r in results)
        assert codes == [201] + [409] * 7, [r.text for r in results]
        assert {r.json()["error"] for r in results if r.status_code == 409} == {"version_exists"}

    def test_same_idempotency_key_creates_one_version(
        self, live_server: LiveServer, setup: tuple[str, str]
    ) -> None:
        ns, base = setup
        key = unique("key")
        results = _run(6, lambda i: _push(live_server, ns, "idem", _variant(i), base, key=key))
        created = [r for r in results if r.status_code == 201]
        assert created, [r.text for r in results]
        assert all(r.status_code in (201, 409, 422) for r in results), [r.text for r in results]
        with _client(live_server) as c:
            assert c.get(f"/api/v1/adapters/{ns}/idem").json()["latest_version"] == 1
