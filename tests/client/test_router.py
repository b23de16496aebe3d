"""The client-side Router: same arms as the server's split, conditional refreshes on a fake
clock, failures, the share 0 / 10000 shortcuts and the per-revision key cache."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.canary.hashing import arm
from registry.client import ClientError, RegistryClient
from registry.client import router as router_module
from registry.client.router import Route, Router, RouterError

SALT = "9f2c4e1a7b3d5f60a1b2c3d4e5f60718"
KEYS = [f"user-{i}" for i in range(2000)]


def table(revision: int = 7, share_bp: int = 500, **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "deployment": "support-prod",
        "revision": revision,
        "hash_spec": "sha256-salt-key-v1",
        "salt": SALT,
        "share_bp": share_bp,
        "base": {"ref": "meta-llama/Llama-3.1-8B@abc123", "manifest_digest": "sha256:" + "0" * 64},
        "stable": {
            "ref": "acme/support-bot@v8",
            "version": 8,
            "digest": "sha256:" + "a" * 64,
            "serving_name": "acme--support-bot--v8--aaaaaaaaaaaa",
            "peft_type": "LORA",
            "r": 16,
        },
        "candidate": {
            "ref": "acme/support-bot@v9",
            "version": 9,
            "digest": "sha256:" + "b" * 64,
            "serving_name": "acme--support-bot--v9--bbbbbbbbbbbb",
            "peft_type": "LORA",
            "r": 16,
        },
        "effective_at": "2026-11-25T20:00:00Z",
    }
    return body | kw


Answer = tuple[int, dict[str, Any] | None, str | None] | Exception


class FakeServer:
    """A scripted ``fetch``: answers in order (the last one repeats); records every call."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, str | None]] = []

    def __call__(
        self, deployment: str, etag: str | None
    ) -> tuple[int, dict[str, Any] | None, str | None]:
        self.calls.append((deployment, etag))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(*answers: Answer, **kw: Any) -> tuple[Router, FakeServer, Clock]:
    server, clock = FakeServer(*answers), Clock()
    return Router(server, refresh_s=5.0, clock=clock, **kw), server, clock


# --------------------------------------------------------------------------- resolution


@pytest.mark.parametrize("share_bp", [1, 500, 5000, 9999])
@pytest.mark.parametrize("cache_size", [0, 64, 65_536])
def test_same_arms_as_the_hash_spec(share_bp: int, cache_size: int) -> None:
    router, _, _ = make((200, table(share_bp=share_bp), '"r7"'), cache_size=cache_size)
    for _ in range(2):  # cold, then (where cached) remembered
        for key in KEYS:
            route = router.resolve("support-prod", key)
            assert route.arm == arm(SALT, key, share_bp), key
            assert route.version == (9 if route.arm == "candidate" else 8)
            assert route.revision == 7


_VALID_KEYS = st.text(
    st.characters(exclude_characters="\x00", exclude_categories=["Cs"]),
    min_size=1,
    max_size=64,
)


@settings(max_examples=300, deadline=None)
@given(key=_VALID_KEYS, share_bp=st.integers(1, 9999))
def test_any_valid_key_gets_the_hash_spec_arm(key: str, share_bp: int) -> None:
    """Any text (non-ASCII included), hashed by the router's copied prefix hasher, lands where
    the server's ``hashing.arm`` puts it."""
    router, _, _ = make((200, table(share_bp=share_bp), None), cache_size=0)
    assert router.resolve("support-prod", key).arm == arm(SALT, key, share_bp)


def test_route_fields() -> None:
    router, _, _ = make((200, table(share_bp=10_000), None))
    assert router.resolve("support-prod", "k") == Route(
        arm="candidate",
        ref="acme/support-bot@v9",
        version=9,
        digest="sha256:" + "b" * 64,
        serving_name="acme--support-bot--v9--bbbbbbbbbbbb",
        revision=7,
    )


@pytest.mark.parametrize(
    ("share_bp", "candidate", "expected"),
    [(0, "keep", "stable"), (0, None, "stable"), (10_000, "keep", "candidate")],
)
def test_full_shares_skip_hashing(
    share_bp: int, candidate: str | None, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = table(share_bp=share_bp)
    if candidate is None:
        body["candidate"] = None

    def no_hashing(_: bytes) -> Any:
        raise AssertionError("hashed")

    monkeypatch.setattr(router_module, "_uint64_be", no_hashing)
    router, _, _ = make((200, body, None))
    assert {router.resolve("support-prod", k).arm for k in KEYS} == {expected}


@pytest.mark.parametrize("share_bp", [0, 500, 10_000])
@pytest.mark.parametrize("key", ["", "k" * 1025, "a\x00b", "\ud800"])
def test_invalid_keys_are_refused(share_bp: int, key: str) -> None:
    router, _, _ = make((200, table(share_bp=share_bp), None))
    with pytest.raises(ValueError):  # noqa: PT011 - the messages of hashing.check_key
        router.resolve("support-prod", key)
    with pytest.raises(ValueError):  # noqa: PT011
        router.resolve("support-prod", 42)  # type: ignore[arg-type]
    assert router.resolve("support-prod", "k" * 1024).revision == 7


def test_key_cache_is_bounded_and_per_revision() -> None:
    router, _, clock = make((200, table(), '"a"'), (200, table(revision=8), '"b"'), cache_size=16)
    for key in KEYS[:100]:
        router.resolve("support-prod", key)
        assert len(router._tables["support-prod"].cache) <= 16
    clock.now += 5
    assert router.resolve("support-prod", KEYS[0]).revision == 8
    assert len(router._tables["support-prod"].cache) <= 1


def test_same_routing_keeps_the_cache_across_a_new_etag() -> None:
    router, _, clock = make((200, table(), '"a"'), (200, table(), '"b"'))
    router.resolve("support-prod", "k")
    cache = router._tables["support-prod"].cache
    clock.now += 5
    router.resolve("support-prod", "k")
    assert router._tables["support-prod"].etag == '"b"'
    assert router._tables["support-prod"].cache is cache


# --------------------------------------------------------------------------- refreshing


def test_refresh_timing_and_conditional_requests() -> None:
    router, server, clock = make(
        (200, table(revision=7), '"r7"'),
        (304, None, '"r7"'),
        (200, table(revision=8, share_bp=10_000), '"r8"'),
    )
    assert router.resolve("support-prod", "k").revision == 7
    assert server.calls == [("support-prod", None)]
    clock.now += 4.999
    router.resolve("support-prod", "k")
    assert len(server.calls) == 1  # fresh: no request
    clock.now += 0.001
    assert router.resolve("support-prod", "k").revision == 7  # 304: the cached table
    assert server.calls[-1] == ("support-prod", '"r7"')
    clock.now += 4.9
    router.resolve("support-prod", "k")
    assert len(server.calls) == 2  # a 304 restarts the refresh period
    clock.now += 0.1
    route = router.resolve("support-prod", "k")
    assert (route.revision, route.arm) == (8, "candidate")
    assert server.calls[-1] == ("support-prod", '"r7"')
    assert router.table("support-prod") == table(revision=8, share_bp=10_000)


def test_failed_refresh_keeps_serving_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    router, server, clock = make(
        (200, table(), '"r7"'),
        ClientError("server_unavailable", 0, "down"),
        (200, table(revision=9), '"r9"'),
    )
    router.resolve("support-prod", "k")
    clock.now += 5
    with caplog.at_level(logging.WARNING, logger="registry.client.router"):
        assert router.resolve("support-prod", "k").revision == 7
    assert "still serving revision 7" in caplog.text
    assert "down" in caplog.text
    calls = len(server.calls)
    clock.now += 4
    router.resolve("support-prod", "k")
    assert len(server.calls) == calls  # no retry storm: the next attempt is refresh_s later
    clock.now += 1
    assert router.resolve("support-prod", "k").revision == 9


@pytest.mark.parametrize(
    "bad",
    [
        (500, None, None),
        (200, None, None),
        (304, None, None),  # 304 to an unconditional request
        (200, table(hash_spec="sha256-salt-key-v2"), None),
        (200, table(deployment="other"), None),
        (200, table(share_bp=10_001), None),
        (200, table(share_bp=500, candidate=None), None),
        (200, table(salt="has:colon"), None),
        (200, table() | {"revision": "7"}, None),
        (200, table(stable={"ref": "x"}), None),
        (200, table(stable=[]), None),
        (200, table(candidate={**table()["candidate"], "version": True}), None),
    ],
)
def test_unusable_tables(bad: Answer, caplog: pytest.LogCaptureFixture) -> None:
    first, _, _ = make(bad)
    with pytest.raises(RouterError) as info:
        first.resolve("support-prod", "k")
    assert isinstance(info.value, KeyError)
    assert "support-prod" in str(info.value)
    later, _, clock = make((200, table(), '"r7"'), bad)
    later.resolve("support-prod", "k")
    clock.now += 5
    with caplog.at_level(logging.WARNING):
        assert later.resolve("support-prod", "k").revision == 7


def test_never_fetched_deployment_raises_and_is_not_hammered() -> None:
    router, server, clock = make(ClientError("not_found", 404, "no such deployment"))
    for _ in range(3):
        with pytest.raises(RouterError, match="no such deployment"):
            router.resolve("support-prod", "k")
    assert len(server.calls) == 1
    server.answers = [(200, table(), None)]
    clock.now += 5
    assert router.resolve("support-prod", "k").revision == 7
    assert router.table("missing") is None


def test_refresh_and_invalidate() -> None:
    router, server, _ = make((200, table(), '"r7"'), (304, None, None), (200, table(8), '"r8"'))
    assert router.refresh("support-prod") == 7
    assert router.refresh("support-prod") == 7
    assert server.calls[-1] == ("support-prod", '"r7"')
    router.invalidate("other")
    router.resolve("support-prod", "k")
    assert len(server.calls) == 2
    router.invalidate()
    assert router.resolve("support-prod", "k").revision == 8


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match="refresh_s"):
        Router(FakeServer((200, table(), None)), refresh_s=-1)
    with pytest.raises(ValueError, match="cache_size"):
        Router(FakeServer((200, table(), None)), cache_size=-1)


def test_concurrent_resolves_during_refreshes() -> None:
    import threading

    answers: list[Answer] = [(200, table(revision=r), f'"{r}"') for r in range(1, 60)]
    router, _, clock = make(*answers)
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(2000):
                key = f"user-{rng.randrange(500)}"
                route = router.resolve("support-prod", key)
                assert route.arm == arm(SALT, key, 500)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for _ in range(50):
        clock.now += 5
    for t in threads:
        t.join()
    assert not errors


# --------------------------------------------------------------------------- from_client


def mock_client(handler: Callable[[httpx.Request], httpx.Response]) -> RegistryClient:
    return RegistryClient(
        "http://registry.test", token="tok", transport=httpx.MockTransport(handler)
    )


def test_from_client_uses_etags_and_the_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers.get("If-None-Match") == '"r7"':
            return httpx.Response(304, headers={"ETag": '"r7"'})
        return httpx.Response(200, json=table(), headers={"ETag": '"r7"'})

    clock = Clock()
    router = Router.from_client(mock_client(handler), clock=clock)
    assert router.resolve("support-prod", "k").revision == 7
    clock.now += 5
    assert router.resolve("support-prod", "k").revision == 7
    assert [r.url.path for r in seen] == ["/api/v1/deployments/support-prod/routing-table"] * 2
    assert "If-None-Match" not in seen[0].headers
    assert seen[1].headers["If-None-Match"] == '"r7"'
    assert seen[0].headers["Authorization"] == "Bearer tok"


def test_from_client_errors() -> None:
    def not_found(request: httpx.Request) -> httpx.Response:
        body = {"error": "deployment_not_found", "detail": "no deployment 'x'", "context": {}}
        return httpx.Response(404, json=body)

    router = Router.from_client(mock_client(not_found))
    with pytest.raises(RouterError, match="deployment_not_found"):
        router.resolve("x", "k")

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    router = Router.from_client(mock_client(down))
    with pytest.raises(RouterError, match="server_unavailable"):
        router.resolve("x", "k")
