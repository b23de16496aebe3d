"""Issue 11's acceptance figures over real HTTP: hostile requests and frozen dependencies.

Against ``adapter-registry serve`` (SQLite, local store; PostgreSQL and S3 where the case needs
them), while a poller asks ``/healthz`` every 20 ms on a connection of its own:

* ``body_60mb_anonymous_x100`` / ``body_60mb_token_x20`` - 100 / 20 times, a 60 MB JSON body
  without a token (declared ``Content-Length``) and with a valid token (chunked): the slowest
  refusal;
* ``slowloris_200`` - 200 connections that never finish their headers: ``/healthz`` meanwhile,
  and how many the server closed by itself (``header_timeout_s``);
* ``adapter_<case>`` - the hostile adapters of ``bench.hostile_validation`` pushed through the API
  (upload, then register): time from the register call to its answer;
* ``frozen_postgresql`` / ``frozen_s3`` - the database or the object store behind a TCP proxy
  that stops passing bytes (tests/fixtures/faults.py): ``/healthz``, ``/readyz`` and a request
  that needs the frozen dependency.

    python -m bench.hostile [--quick]
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx

from bench import hostile_validation
from bench._common import (
    Server,
    migrate_and_bootstrap,
    parse_args,
    postgres_available,
    print_table,
    running,
    scratch_database,
    setup_catalog,
    start_registry,
    write_json,
)
from tests.fixtures.faults import FreezableProxy, freezable_proxy

MB = 1024 * 1024


class HealthPoller:
    """``GET /healthz`` every 20 ms on a keep-alive connection; latencies in ms."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._stop = threading.Event()
        self.samples: list[float] = []
        self.failures = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self._url, timeout=30) as client:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                try:
                    ok = client.get("/healthz").status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    self.samples.append((time.perf_counter() - t0) * 1000)
                else:
                    self.failures += 1
                self._stop.wait(0.02)

    def __enter__(self) -> HealthPoller:
        self._thread.start()
        for _ in range(200):  # the window starts once the poller is answering
            if self.samples or self.failures:
                break
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def summary(self) -> dict[str, float]:
        s = sorted(self.samples) or [float("nan")]
        return {
            "healthz_n": len(self.samples),
            "healthz_p50_ms": round(statistics.median(s), 2),
            "healthz_p99_ms": round(s[min(len(s) - 1, int(len(s) * 0.99))], 2),
            "healthz_max_ms": round(s[-1], 2),
            "healthz_failures": self.failures,
        }


def _address(server: Server) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def _status_of(sock: socket.socket) -> int:
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            return 0
        head += chunk
    return int(head.split(b" ")[1])


def body_anonymous(server: Server, size: int) -> dict[str, Any]:
    """Declare ``size`` bytes, send the body in 1 MB writes until the answer arrives."""
    t0 = time.perf_counter()
    with socket.create_connection(_address(server), timeout=60) as sock:
        sock.sendall(
            b"POST /api/v1/namespaces HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % size
        )
        sent = 0
        sock.setblocking(False)
        status = 0
        while status == 0:
            with contextlib.suppress(BlockingIOError):
                status = _status_of(sock)
            if status == 0 and sent < size:
                with contextlib.suppress(BlockingIOError, BrokenPipeError, ConnectionResetError):
                    sent += sock.send(b" " * min(MB, size - sent))
            elif status == 0:
                time.sleep(0.001)
    return {"status": status, "answer_s": round(time.perf_counter() - t0, 4), "body_sent": sent}


def body_with_token(server: Server, token: str, size: int) -> dict[str, Any]:
    def chunks() -> Iterator[bytes]:
        for _ in range(size // MB):
            yield b" " * MB

    t0 = time.perf_counter()
    try:
        r = httpx.post(
            f"{server.url}/api/v1/namespaces",
            content=chunks(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=60,
        )
        status = r.status_code
    except httpx.HTTPError as exc:  # the server closed while the client was still sending
        status = -1
        return {"status": status, "answer_s": round(time.perf_counter() - t0, 4), "error": str(exc)}
    return {"status": status, "answer_s": round(time.perf_counter() - t0, 4)}


def _worst(
    send: Callable[[Server, int], dict[str, Any]], server: Server, size: int, times: int = 20
) -> dict[str, Any]:
    """``send`` ``times`` times back to back (long enough for the health poller to sample);
    the slowest answer."""
    outcomes = [send(server, size) for _ in range(times)]
    worst = max(outcomes, key=lambda o: float(o["answer_s"]))
    return {**worst, "statuses": sorted({o["status"] for o in outcomes}), "times": times}


def slowloris(server: Server, connections: int) -> dict[str, Any]:
    socks = []
    for _ in range(connections):
        s = socket.create_connection(_address(server), timeout=60)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: s\r\nX-Slow: ")
        socks.append(s)
    t0 = time.perf_counter()
    closed = 0
    for s in socks:
        with contextlib.suppress(OSError):
            data = s.recv(4096)
            closed += data.startswith(b"HTTP/1.1 408")
        s.close()
    return {
        "connections": connections,
        "closed_with_408": closed,
        "all_closed_after_s": round(time.perf_counter() - t0, 2),
    }


def push_hostile(server: Server, token: str, base: str, case: str, quick: bool) -> dict[str, Any]:
    files = hostile_validation.build(case, quick)
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=600) as client:
        upload = client.post("/api/v1/uploads", json={}).json()["id"]
        for name, data in files.items():
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            r = client.put(
                f"/api/v1/uploads/{upload}/files/{name}",
                content=data,
                headers={"X-Content-Digest": digest},
            )
            if r.status_code != 201:
                return {"refused_at": "upload", "status": r.status_code, "code": r.json()["error"]}
        with HealthPoller(server.url) as poller:  # during the register call only
            t0 = time.perf_counter()
            r = client.post(
                f"/api/v1/adapters/bench/{case.replace('_', '-')}/versions",
                json={"base": base, "upload_id": upload},
            )
            answer = time.perf_counter() - t0
    body = r.json()
    return {
        "status": r.status_code,
        "code": body.get("error"),
        "reason": (body.get("context") or {}).get("reason"),
        "answer_s": round(answer, 4),
        **poller.summary(),
    }


def _frozen(
    server: Server, proxy: FreezableProxy, token: str, needs_it: Callable[[httpx.Client], int]
) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=120) as client:
        needs_it(client)  # warm: token cached, pools filled
        proxy.freeze()
        try:
            with HealthPoller(server.url) as poller:
                t0 = time.perf_counter()
                ready = client.get("/readyz")
                ready_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                status = needs_it(client)
                dependent_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                again = needs_it(client)
                again_s = time.perf_counter() - t0
        finally:
            proxy.thaw()
    return {
        "readyz_status": ready.status_code,
        "readyz_checks": ready.json().get("checks"),
        "readyz_s": round(ready_s, 3),
        "dependent_status": status,
        "dependent_s": round(dependent_s, 3),
        "second_dependent_status": again,
        "second_dependent_s": round(again_s, 3),
        **poller.summary(),
    }


def frozen_postgresql(tmp: Path) -> dict[str, Any]:
    from sqlalchemy.engine import make_url

    with scratch_database("postgresql", tmp, "hostile") as url:
        token = migrate_and_bootstrap(url)
        parsed = make_url(url)
        with freezable_proxy(parsed.host or "127.0.0.1", parsed.port or 5432) as proxy:
            via = parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(
                hide_password=False
            )
            with running(start_registry(via, tmp, "frozen-pg")) as server:
                return _frozen(
                    server,
                    proxy,
                    token,
                    lambda c: c.post("/api/v1/namespaces", json={"name": _name()}).status_code,
                )


def frozen_s3(tmp: Path) -> dict[str, Any]:
    import boto3
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    boto3.client(
        "s3",
        endpoint_url=f"http://{host}:{port}",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket="hostile")
    try:
        with freezable_proxy(host, port) as proxy, scratch_database("sqlite", tmp, "s3") as url:
            token = migrate_and_bootstrap(url)
            settings = {
                "REGISTRY_STORAGE__BACKEND": "s3",
                "REGISTRY_STORAGE__BUCKET": "hostile",
                "REGISTRY_STORAGE__ENDPOINT_URL": f"http://{proxy.address}",
                "REGISTRY_STORAGE__ACCESS_KEY_ID": "testing",
                "REGISTRY_STORAGE__SECRET_ACCESS_KEY": "testing",
            }
            with running(start_registry(url, tmp, "frozen-s3", workers=1, **settings)) as server:
                upload = httpx.post(
                    f"{server.url}/api/v1/uploads",
                    headers={"Authorization": f"Bearer {token}"},
                    json={},
                ).json()["id"]
                data = b"# frozen\n"
                digest = "sha256:" + hashlib.sha256(data).hexdigest()
                return _frozen(
                    server,
                    proxy,
                    token,
                    lambda c: (
                        c.put(
                            f"/api/v1/uploads/{upload}/files/README.md",
                            content=data,
                            headers={"X-Content-Digest": digest},
                        ).status_code
                    ),
                )
    finally:
        moto.stop()


_COUNTER = iter(range(10**9))


def _name() -> str:
    return f"hostile-{next(_COUNTER)}"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(__doc__ or "", argv)
    results: dict[str, Any] = {}
    with TemporaryDirectory(prefix="bench-hostile-") as tmp_name:
        tmp = Path(tmp_name)
        with scratch_database("sqlite", tmp, "hostile") as url:
            token = migrate_and_bootstrap(url)
            with running(start_registry(url, tmp, "hostile")) as server:
                with httpx.Client(
                    base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
                ) as client:
                    base = setup_catalog(client)
                requests: list[tuple[str, Callable[[], dict[str, Any]]]] = [
                    (
                        "body_60mb_anonymous_x100",
                        lambda: _worst(body_anonymous, server, 60 * MB, 100),
                    ),
                    (
                        "body_60mb_token_x20",
                        lambda: _worst(
                            lambda srv, n: body_with_token(srv, token, n), server, 60 * MB
                        ),
                    ),
                    ("slowloris_200", lambda: slowloris(server, 50 if args.quick else 200)),
                ]
                for name, run in requests:
                    with HealthPoller(server.url) as poller:
                        outcome = run()
                    results[name] = {**outcome, **poller.summary()}
                for case in hostile_validation.CASES:
                    results[f"adapter_{case}"] = push_hostile(server, token, base, case, args.quick)
        if postgres_available():
            results["frozen_postgresql"] = frozen_postgresql(tmp)
        results["frozen_s3"] = frozen_s3(tmp)
    rows = [
        [
            name,
            r.get("status", r.get("dependent_status", "")),
            r.get("code") or r.get("readyz_checks") or "",
            r.get("answer_s", r.get("dependent_s", r.get("all_closed_after_s", ""))),
            r.get("readyz_s", ""),
            r.get("healthz_p99_ms", ""),
            r.get("healthz_max_ms", ""),
        ]
        for name, r in results.items()
    ]
    print_table(
        "Hostile requests and frozen dependencies (issue 11)",
        ["case", "status", "code / readyz", "answer (s)", "readyz (s)", "healthz p99 ms", "max ms"],
        rows,
    )
    write_json("hostile", {"quick": bool(args.quick), "results": results})
    return results


if __name__ == "__main__":
    main()
