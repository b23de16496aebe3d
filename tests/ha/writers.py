"""Clients that register adapter versions through a set of replicas while things fail, and
record which registrations were acknowledged (``201``).

A client does what a careful production client does: on a ``503`` or a dropped connection it
tries again (the same replica set, the next replica first), and it retries a registration with
the same ``Idempotency-Key`` so that an answer lost in a crash is replayed, not registered
twice. An upload session lost with the old primary (created, never replicated) makes the
registration answer ``404``: the client starts the push again. Any ``500`` is recorded: the
test asserts there were none.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx

from tests.factories.catalog import sha256_hex
from tests.factories.governance import auth
from tests.fixtures.peft import PEFT_FIXTURES

ADAPTER_DIR = PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn"
_TRANSIENT = (503,)


class Retry(Exception):
    """A step failed in a way worth retrying (503, connection lost)."""


@dataclass
class Writer:
    """One client writing versions of its own adapter ``ns/name``."""

    name: str
    ns: str
    base: str
    token: str
    urls: list[str]
    acked: dict[int, str] = field(default_factory=dict)  # version -> digest, as acknowledged
    errors: list[str] = field(default_factory=list)  # 5xx other than 503 (must stay empty)
    retries: int = 0
    last_retry: str = ""  # why the latest retry happened (shown when the test fails)
    _rr: itertools.count[int] = field(default_factory=itertools.count)

    def _call(self, url: str, method: str, path: str, **kwargs: object) -> httpx.Response:
        try:
            with httpx.Client(base_url=url, headers=auth(self.token), timeout=20) as c:
                r = c.request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError as exc:  # the replica is gone, or dropped us mid-answer
            self.last_retry = f"{time.monotonic():.1f} {method} {path}: {exc!r}"
            raise Retry(str(exc)) from exc
        if r.status_code in _TRANSIENT:
            self.last_retry = f"{time.monotonic():.1f} {method} {path}: {r.text[:200]}"
            raise Retry(r.text)
        if r.status_code >= 500:
            self.errors.append(f"{method} {path}: {r.status_code} {r.text[:300]}")
            raise Retry(r.text)
        return r

    def write_one(self, n: int, deadline: float) -> None:
        """Push a distinct version (its README names ``n``) until it is acknowledged."""
        while time.monotonic() < deadline:
            try:
                self._push(n, deadline)
                return
            except Retry:
                self.retries += 1
                time.sleep(0.1)
        raise AssertionError(f"{self.name}: write {n} not acknowledged before the deadline")

    def _push(self, n: int, deadline: float) -> None:
        """One attempt, on one replica (the next one in turn: a retry moves on)."""
        url = self.urls[next(self._rr) % len(self.urls)]
        r = self._call(url, "POST", "/api/v1/uploads", json={})
        if r.status_code != 201:
            self.last_retry = f"{time.monotonic():.1f} upload: {r.status_code} {r.text[:200]}"
            raise Retry(r.text)
        upload = r.json()["id"]
        for path in sorted(ADAPTER_DIR.iterdir()):
            data = path.read_bytes() if path.name != "README.md" else f"{self.name} {n}\n".encode()
            r = self._call(
                url,
                "PUT",
                f"/api/v1/uploads/{upload}/files/{path.name}",
                content=data,
                headers={"X-Content-Digest": f"sha256:{sha256_hex(data)}"},
            )
            if r.status_code != 201:  # the session was lost with the old primary
                self.last_retry = f"{time.monotonic():.1f} put: {r.status_code} {r.text[:200]}"
                raise Retry(r.text)
        key = uuid.uuid4().hex
        while time.monotonic() < deadline:
            try:
                r = self._call(
                    url,
                    "POST",
                    f"/api/v1/adapters/{self.ns}/{self.name}/versions",
                    json={"base": self.base, "upload_id": upload},
                    headers={"Idempotency-Key": key},
                )
            except Retry:  # the same key on the next replica: a lost answer is replayed
                self.retries += 1
                url = self.urls[next(self._rr) % len(self.urls)]
                time.sleep(0.1)
                continue
            if r.status_code == 409 and "idempotency_key_in_flight" in r.text:
                time.sleep(0.1)  # the first attempt is still running: ask again, same key
                continue
            if r.status_code != 201:
                self.last_retry = f"{time.monotonic():.1f} register: {r.status_code} {r.text[:200]}"
                raise Retry(r.text)  # e.g. the upload session never reached the standby
            body = r.json()
            self.acked[int(body["version"])] = str(body["digest"])
            return
        raise Retry("deadline")


def run_writers(
    writers: list[Writer], stop: threading.Event, deadline: float
) -> list[threading.Thread]:
    """Each writer in a thread of its own, writing until ``stop`` is set."""

    def loop(w: Writer) -> None:
        for n in itertools.count(1):
            if stop.is_set() or time.monotonic() > deadline:
                return
            try:
                w.write_one(n, deadline)
            except AssertionError as exc:
                w.errors.append(str(exc))
                return

    threads = [threading.Thread(target=loop, args=(w,), name=f"writer-{w.name}") for w in writers]
    for t in threads:
        t.start()
    return threads
