"""Bounded time and memory per request, before and after authentication (issue 11, point 3).

Over real HTTP against ``adapter-registry serve`` (the guarded uvicorn protocol and the request
guard middleware), with short timeouts so the slow-client cases end quickly. No timing is
asserted: a refusal that is sent *before* the client has sent its body proves the body was not
read (the client sends only a few bytes of what it declared, then waits; a server that waited
for the rest would hang until the 30 s socket guard fails the test).
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.server import LiveServer, serving

GUARD_S = 30  # hang guard of every socket read: a regression fails instead of hanging


@pytest.fixture(scope="module")
def guarded(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serving(
        database_url,
        tmp_path_factory.mktemp("guarded"),
        REGISTRY_SERVER__HEADER_TIMEOUT_S="1",
        REGISTRY_SERVER__BODY_TIMEOUT_S="1",
        REGISTRY_SERVER__IDLE_TIMEOUT_S="1",
        REGISTRY_SERVER__MAX_HEADER_BYTES="8192",
    ) as server:
        yield server


def _connect(server: LiveServer) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=GUARD_S)
    return sock


def _response(sock: socket.socket) -> tuple[int, dict[str, str], dict[str, object]]:
    """Read one response (the server closes or sends Content-Length) from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    is_json = headers.get("content-type", "").startswith("application/json")
    return status, headers, json.loads(body[:length]) if length and is_json else {}


def _request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class TestBodiesBeforeAuthentication:
    def test_huge_unauthenticated_body_refused_before_reading(self, guarded: LiveServer) -> None:
        with _connect(guarded) as sock:
            declared = 60 * 1024 * 1024
            sock.sendall(
                _request(
                    "POST",
                    "/api/v1/namespaces",
                    {"Content-Type": "application/json", "Content-Length": str(declared)},
                    b"[" * 4096,  # 4 KiB of 60 MiB: the answer must not wait for the rest
                )
            )
            status, headers, body = _response(sock)
        assert status == 413
        assert body["error"] == "payload_too_large"
        assert headers["connection"] == "close"

    def test_body_without_token_refused_before_reading(self, guarded: LiveServer) -> None:
        with _connect(guarded) as sock:
            sock.sendall(
                _request(
                    "POST",
                    "/api/v1/namespaces",
                    {"Content-Type": "application/json", "Content-Length": "1000"},
                    b'{"name":',  # declared 1000 bytes, sent 8: 401 comes first
                )
            )
            status, _, body = _response(sock)
        assert status == 401
        assert body["error"] == "unauthenticated"

    def test_bad_token_refused_before_reading(self, guarded: LiveServer) -> None:
        with _connect(guarded) as sock:
            sock.sendall(
                _request(
                    "PUT",
                    f"/api/v1/uploads/{uuid.uuid4()}/files/adapter_config.json",
                    {"Authorization": "Bearer ar_not-a-real-token", "Content-Length": "9999999"},
                )
            )
            status, _, body = _response(sock)
        assert status == 401
        assert body["error"] == "unauthenticated"

    def test_chunked_body_over_limit_refused(self, guarded: LiveServer) -> None:
        def chunks() -> Iterator[bytes]:
            for _ in range(3):
                yield b" " * (512 * 1024)

        r = httpx.post(
            f"{guarded.url}/api/v1/namespaces",
            content=chunks(),
            headers={
                "Authorization": f"Bearer {guarded.token}",
                "Content-Type": "application/json",
            },
            timeout=GUARD_S,
        )
        assert r.status_code == 413
        assert r.json()["error"] == "payload_too_large"
        assert r.json()["context"]["limit"] == 1024 * 1024

    def test_malformed_content_length_is_bad_request(self, guarded: LiveServer) -> None:
        # The HTTP parser refuses it itself (plain-text 400) before the application runs.
        with _connect(guarded) as sock:
            sock.sendall(
                _request(
                    "POST",
                    "/api/v1/namespaces",
                    {"Authorization": f"Bearer {guarded.token}", "Content-Length": "12abc"},
                )
            )
            status, _, _ = _response(sock)
        assert status == 400


class TestSlowClients:
    def test_headers_never_finished_get_408(self, guarded: LiveServer) -> None:
        with _connect(guarded) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")  # no blank line: stalls
            status, headers, body = _response(sock)
        assert status == 408
        assert body["error"] == "request_timeout"
        assert headers["connection"] == "close"

    def test_silent_connection_gets_408(self, guarded: LiveServer) -> None:
        with _connect(guarded) as sock:
            status, _, _ = _response(sock)
        assert status == 408

    def test_slow_json_body_gets_408(self, guarded: LiveServer) -> None:
        with _connect(guarded) as sock:
            sock.sendall(
                _request(
                    "POST",
                    "/api/v1/namespaces",
                    {
                        "Authorization": f"Bearer {guarded.token}",
                        "Content-Type": "application/json",
                        "Content-Length": "100",
                    },
                    b'{"name": "slow',  # then nothing
                )
            )
            status, _, body = _response(sock)
        assert status == 408
        assert body["error"] == "request_timeout"

    def test_stalled_upload_gets_408(self, guarded: LiveServer) -> None:
        auth = {"Authorization": f"Bearer {guarded.token}"}
        upload = httpx.post(f"{guarded.url}/api/v1/uploads", headers=auth, timeout=GUARD_S)
        assert upload.status_code == 201
        with _connect(guarded) as sock:
            sock.sendall(
                _request(
                    "PUT",
                    f"/api/v1/uploads/{upload.json()['id']}/files/README.md",
                    {**auth, "Content-Length": "1000", "X-Content-Digest": "sha256:" + "0" * 64},
                    b"# partial",
                )
            )
            status, _, body = _response(sock)
        assert status == 408
        assert body["error"] == "request_timeout"
        files = httpx.get(
            f"{guarded.url}/api/v1/uploads/{upload.json()['id']}", headers=auth, timeout=GUARD_S
        )
        assert files.json()["files"] == []  # nothing recorded from the stalled PUT


class TestHeaderSize:
    def test_oversized_headers_get_431(self, guarded: LiveServer) -> None:
        with _connect(guarded) as sock:
            sock.sendall(_request("GET", "/healthz", {"X-Padding": "a" * 20_000}))
            status, _, body = _response(sock)
        assert status == 431
        assert body["error"] == "headers_too_large"

    def test_one_header_value_never_finished_is_bounded(self, guarded: LiveServer) -> None:
        with _connect(guarded) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Padding: " + b"a" * 20_000)
            status, _, _ = _response(sock)
        assert status == 431

    def test_long_url_gets_431(self, guarded: LiveServer) -> None:
        with _connect(guarded) as sock:
            sock.sendall(_request("GET", "/healthz?" + "a" * 10_000, {}))
            status, _, _ = _response(sock)
        assert status == 431

    def test_normal_request_still_served_on_the_guarded_protocol(self, guarded: LiveServer) -> None:
        with httpx.Client(base_url=guarded.url, timeout=GUARD_S) as client:
            for _ in range(3):  # keep-alive: the header deadline re-arms per request
                assert client.get("/healthz").json() == {"status": "ok"}


class TestStrictJson:
    @pytest.mark.parametrize(
        "raw",
        [
            b'{"name": "a", "name": "b"}',
            b'{"name": NaN}',
            b'{"name": Infinity}',
            b'{"name": "a", "description": ' + b"[" * 40 + b"]" * 40 + b"}",
            b"[" * 100_000 + b"]" * 100_000,
            b'{"name": "a", "description": "nul \\u0000 here"}',
            b'{"name": "a", "description": "lone \\ud800"}',
            b'{"name": "a", "description": "x", "\\u00e9": 1, "e\\u0301": 2}',
        ],
        ids=[
            "duplicate-key",
            "nan",
            "infinity",
            "too-deep",
            "recursion",
            "nul",
            "surrogate",
            "nfc",
        ],
    )
    def test_refused_json(self, guarded: LiveServer, raw: bytes) -> None:
        r = httpx.post(
            f"{guarded.url}/api/v1/namespaces",
            content=raw,
            headers={
                "Authorization": f"Bearer {guarded.token}",
                "Content-Type": "application/json",
            },
            timeout=GUARD_S,
        )
        assert r.status_code == 422
        assert r.json()["error"] == "invalid_request"
        assert r.json()["context"]["errors"][0]["type"] == "json_invalid"

    def test_refused_json_changes_nothing(self, guarded: LiveServer) -> None:
        name = f"dup{uuid.uuid4().hex[:8]}"
        auth = {"Authorization": f"Bearer {guarded.token}"}
        raw = json.dumps({"name": name}).encode()[:-1] + f', "name": "{name}x"}}'.encode()
        r = httpx.post(
            f"{guarded.url}/api/v1/namespaces",
            content=raw,
            headers={**auth, "Content-Type": "application/json"},
            timeout=GUARD_S,
        )
        assert r.status_code == 422
        for candidate in (name, f"{name}x"):
            got = httpx.get(
                f"{guarded.url}/api/v1/namespaces/{candidate}", headers=auth, timeout=GUARD_S
            )
            assert got.status_code == 404


def test_large_manifest_accepted_on_its_route(guarded: LiveServer, tmp_path: Path) -> None:
    """POST /api/v1/base-models has its own, larger limit (a weights manifest): a 2 MiB
    manifest is registered while the same body elsewhere would be 413."""
    tensors = {
        f"model.layers.{i}.mlp.experts.{j}.w{k}.weight": {"dtype": "BF16", "shape": [64, 32]}
        for i in range(96)
        for j in range(64)
        for k in (1, 2, 3)
    }
    body = {
        "name": f"big/moe-{uuid.uuid4().hex[:8]}",
        "revision": "main",
        "config": {"model_type": "llama", "vocab_size": 100, "hidden_size": 32},
        "tensors": tensors,
    }
    raw = json.dumps(body).encode()
    assert len(raw) > 1024 * 1024
    r = httpx.post(
        f"{guarded.url}/api/v1/base-models",
        content=raw,
        headers={"Authorization": f"Bearer {guarded.token}", "Content-Type": "application/json"},
        timeout=GUARD_S,
    )
    assert r.status_code == 201, r.text
