"""A circuit breaker for the object store: fail fast while it does not answer.

Every S3 call is bounded (connect/read timeouts, a few attempts), but a hung store still costs
each request that touches it the whole bound — tens of seconds of a worker thread — and requests
queue behind each other. After ``threshold`` consecutive calls that failed without any answer
from the store (connect/read timeouts, refused or reset connections), the breaker *opens*: for
``cooldown_s`` every call fails at once with ``503 storage_unavailable`` (reason
``circuit_open``, ``Retry-After``). The first call after the cool-down goes through as a probe;
any answer from the store (an error status included: the store is alive) closes the breaker.

Hooked into botocore's event system (``before-call``, ``needs-retry`` per attempt, ``after-call``),
so every operation of the client is covered without wrapping each call site.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from registry.errors import StorageUnavailable

_NO_ANSWER = (ConnectTimeoutError, ReadTimeoutError, EndpointConnectionError, ConnectionClosedError)


class CircuitBreaker:
    def __init__(self, *, threshold: int, cooldown_s: float) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until = 0.0

    @property
    def is_open(self) -> bool:
        return self._failures >= self.threshold and time.monotonic() < self._open_until

    def before_call(self, **_: Any) -> None:
        with self._lock:
            if self._failures < self.threshold:
                return
            remaining = self._open_until - time.monotonic()
            if remaining <= 0:
                # Half-open: let this call probe the store; others keep failing fast until it
                # answers or fails.
                self._open_until = time.monotonic() + self.cooldown_s
                return
        raise StorageUnavailable(
            "the object store is not answering; retry later",
            context={"reason": "circuit_open", "retry_after_s": math.ceil(remaining)},
        )

    def after_call(self, **_: Any) -> None:
        if self._failures:
            with self._lock:
                self._failures = 0
                self._open_until = 0.0

    def attempt_done(self, caught_exception: BaseException | None = None, **_: Any) -> None:
        """``needs-retry`` (after every attempt): count the attempts the store left unanswered.
        Returns None: the retry decision stays botocore's."""
        if not isinstance(caught_exception, _NO_ANSWER):
            return
        with self._lock:
            self._failures += 1
            if self._failures >= self.threshold:
                self._open_until = time.monotonic() + self.cooldown_s

    def attach(self, client: Any) -> None:
        """Register on an S3 client's events (every operation)."""
        events = client.meta.events
        events.register("before-call.s3", self.before_call)
        events.register("after-call.s3", self.after_call)
        events.register("needs-retry.s3", self.attempt_done)
