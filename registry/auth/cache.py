"""A short-lived, process-local cache of authenticated tokens.

Every request authenticates; without a cache that is a connection checkout and a query per
request. Entries live ``ttl_s`` seconds at most (never past the token's own expiry), so a revoked
token or a disabled principal stops working within ``ttl_s`` on every replica. Keys are token
hashes, never tokens.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from datetime import UTC, datetime

from registry.auth.principal import AuthenticatedPrincipal


class TokenCache:
    def __init__(self, ttl_s: float, capacity: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self._capacity = capacity
        self._items: OrderedDict[str, tuple[float, AuthenticatedPrincipal]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token_hash: str) -> AuthenticatedPrincipal | None:
        if self.ttl_s <= 0:
            return None
        with self._lock:
            found = self._items.get(token_hash)
            if found is None:
                return None
            deadline, principal = found
            if time.monotonic() >= deadline:
                del self._items[token_hash]
                return None
            return principal

    def put(
        self, token_hash: str, principal: AuthenticatedPrincipal, expires_at: datetime | None
    ) -> None:
        if self.ttl_s <= 0:
            return
        lifetime = self.ttl_s
        if expires_at is not None:
            lifetime = min(lifetime, (expires_at - datetime.now(UTC)).total_seconds())
        if lifetime <= 0:
            return
        with self._lock:
            self._items[token_hash] = (time.monotonic() + lifetime, principal)
            self._items.move_to_end(token_hash)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
