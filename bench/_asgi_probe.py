"""Servers for ``bench.asgi_servers`` (uvicorn via ``serve``, granian with the nearest flags) and
raw-socket probes of the protections ``serve`` sets: header size, header time, keep-alive idle
time, concurrency limit. Each probe says what a hostile client gets back and when."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._common import ROOT, Server, _wait_healthy, free_port, registry_env, start_registry

#: Settings for the probes: short bounds (header time ≠ keep-alive, to tell which one acts).
PROBE_SETTINGS = {
    "REGISTRY_SERVER__HEADER_TIMEOUT_S": "2",
    "REGISTRY_SERVER__KEEP_ALIVE_S": "1",
    "REGISTRY_SERVER__MAX_CONCURRENCY": "2",
    "REGISTRY_SERVER__MAX_HEADER_BYTES": "16384",
}
_DEFAULTS = {"header_timeout_s": 10.0, "max_concurrency": 1000, "max_header_bytes": 32 * 1024}


def granian_args(settings: dict[str, str]) -> list[str]:
    """granian's nearest flags for ``serve``'s protections (see docs/benchmarks-history.md):
    header bytes → ``--http1-buffer-size`` (its minimum is 8 KiB), header time →
    ``--http1-header-read-timeout`` (ms, at most 60 s), concurrency → ``--backpressure``
    (queues, never 503). granian 2.8 has no HTTP/1 keep-alive idle timeout."""
    header_s = float(
        settings.get("REGISTRY_SERVER__HEADER_TIMEOUT_S", _DEFAULTS["header_timeout_s"])
    )
    conc = int(settings.get("REGISTRY_SERVER__MAX_CONCURRENCY", _DEFAULTS["max_concurrency"]))
    hdr = int(settings.get("REGISTRY_SERVER__MAX_HEADER_BYTES", _DEFAULTS["max_header_bytes"]))
    return [
        "--http1-buffer-size",
        str(max(8192, hdr)),
        "--http1-header-read-timeout",
        str(min(60_000, int(header_s * 1000))),
        "--backpressure",
        str(conc),
    ]


def start_granian(database_url: str, tmp: Path, label: str, **settings: str) -> Server:
    """``registry.app:create_app`` under granian (ASGI, one worker, HTTP/1, uvloop), same
    database and store settings as :func:`bench._common.start_registry`."""
    artifacts = tmp / f"{label}-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    log = tmp / f"{label}-granian.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = registry_env(database_url, artifacts)
    env.update(settings)
    cmd = [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--http",
        "1",
        "--no-ws",
        "--loop",
        "uvloop",
        "--log-level",
        "warning",
        *granian_args(settings),
        "registry.app:create_app",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT)
    return Server(proc, url, log, _wait_healthy(proc, url, log, "/healthz"))


def start(kind: str, database_url: str, tmp: Path, label: str, **settings: str) -> Server:
    if kind == "uvicorn":
        return start_registry(database_url, tmp, f"{label}-uvicorn", workers=1, **settings)
    return start_granian(database_url, tmp, f"{label}-granian", **settings)


# --------------------------------------------------------------------------- probes


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _until_closed(sock: socket.socket, cap_s: float) -> tuple[float | None, bytes]:
    """Seconds until the server closes (None: still open after ``cap_s``), bytes received."""
    t0 = time.monotonic()
    got = b""
    sock.settimeout(0.05)
    while time.monotonic() - t0 < cap_s:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return round(time.monotonic() - t0, 2), got
        if not chunk:
            return round(time.monotonic() - t0, 2), got
        got += chunk
    return None, got


def _status(raw: bytes) -> str:
    if not raw:
        return "nothing (connection closed)"
    line = raw.split(b"\r\n", 1)[0].decode(errors="replace")
    body = raw.split(b"\r\n\r\n", 1)[1][:80].decode(errors="replace") if b"\r\n\r\n" in raw else ""
    return f"{line} {body}".strip()


def _request(path: str, extra: bytes = b"") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode() + extra + b"\r\n"


def probe(url: str) -> dict[str, Any]:
    """What a server started with :data:`PROBE_SETTINGS` does with hostile connections."""
    out: dict[str, Any] = {}
    with _connect(url) as s:  # headers over the budget (40 KiB against 16 KiB)
        s.sendall(_request("/healthz", b"X-Big: " + b"a" * 40_000 + b"\r\n"))
        closed, got = _until_closed(s, 5)
        out["headers_40KiB"] = {"answer": _status(got), "closed_after_s": closed}
    with _connect(url) as s:  # connects, sends nothing
        closed, got = _until_closed(s, 5)
        out["silent_connection"] = {"answer": _status(got), "closed_after_s": closed}
    with _connect(url) as s:  # slow-loris: one header byte every 0.2 s
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        t0 = time.monotonic()
        closed_at: float | None = None
        try:
            while time.monotonic() - t0 < 5:
                s.sendall(b"a")
                time.sleep(0.2)
        except OSError:
            closed_at = round(time.monotonic() - t0, 2)
        rest_closed, got = _until_closed(s, 0.5)
        closed_at = closed_at if closed_at is not None else rest_closed
        if closed_at is None and rest_closed is not None:
            closed_at = round(5 + rest_closed, 2)
        out["slow_loris"] = {"answer": _status(got), "closed_after_s": closed_at}
    with _connect(url) as s:  # one request, then idle on the kept-alive connection
        s.sendall(_request("/healthz"))
        time.sleep(0.3)
        s.recv(65536)
        closed, got = _until_closed(s, 8)
        out["idle_keep_alive"] = {"closed_after_s": closed and round(closed + 0.3, 2)}
    idle = [_connect(url) for _ in range(2)]  # limit 2: two idle connections, then a request
    try:
        time.sleep(0.2)
        with _connect(url) as s:
            t0 = time.monotonic()
            s.sendall(_request("/healthz"))
            s.settimeout(8)
            try:
                got = s.recv(65536)
            except OSError:
                got = b""
            out["third_connection_at_limit_2"] = {
                "answer": _status(got),
                "after_s": round(time.monotonic() - t0, 2),
            }
    finally:
        for s in idle:
            s.close()
    return out
