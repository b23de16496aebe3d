"""The token cache: bounded lifetime, never past the token's expiry, off at ttl 0."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

from registry.auth.cache import TokenCache
from registry.auth.principal import AuthenticatedPrincipal

P = AuthenticatedPrincipal(id=uuid.uuid4(), name="ci", kind="service", role="developer")


class TestTokenCache:
    def test_hit_within_ttl(self) -> None:
        cache = TokenCache(ttl_s=60)
        cache.put("h", P, None)
        assert cache.get("h") == P

    def test_entry_dies_after_ttl(self) -> None:
        cache = TokenCache(ttl_s=0.05)
        cache.put("h", P, None)
        time.sleep(0.1)
        assert cache.get("h") is None

    def test_entry_never_outlives_the_token(self) -> None:
        cache = TokenCache(ttl_s=60)
        cache.put("h", P, datetime.now(UTC) + timedelta(seconds=0.05))
        time.sleep(0.1)
        assert cache.get("h") is None

    def test_expired_token_is_not_cached(self) -> None:
        cache = TokenCache(ttl_s=60)
        cache.put("h", P, datetime.now(UTC) - timedelta(seconds=1))
        assert cache.get("h") is None

    def test_zero_ttl_disables(self) -> None:
        cache = TokenCache(ttl_s=0)
        cache.put("h", P, None)
        assert cache.get("h") is None

    def test_capacity_evicts_oldest(self) -> None:
        cache = TokenCache(ttl_s=60, capacity=2)
        for key in ("a", "b", "c"):
            cache.put(key, P, None)
        assert cache.get("a") is None
        assert cache.get("c") == P
