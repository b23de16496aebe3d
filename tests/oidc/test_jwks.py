"""JwksCache against a local issuer: discovery, caching, rotation, and a broken issuer."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from registry.errors import OidcProviderUnavailable
from registry.oidc import JwksCache, is_allowed_issuer_url
from registry.oidc.jwks import JwksFetchError, parse_jwks
from tests.oidc.conftest import CACHE_S, REFRESH_MIN_S, TIMEOUT_S
from tests.oidc.local_issuer import (
    FakeClock,
    JwksMode,
    LocalIssuer,
    SigningKey,
    elapsed_under,
    rejected,
)

BROKEN_MODES: list[JwksMode] = [
    "error",
    "html",
    "empty",
    "invalid_json",
    "non_rsa",
    "slow",
    "drip",
]
BOUND_S = 10 * TIMEOUT_S
"""Generous wall-clock bound for a call against a slow issuer (the design bound is ~2x)."""


class TestDiscovery:
    def test_get_key_discovers_jwks_uri_and_returns_key(
        self, jwks: JwksCache, issuer: LocalIssuer, key_a: SigningKey
    ) -> None:
        key = jwks.get_key(issuer.url, "key-a")

        assert key.key.public_numbers() == key_a.private.public_key().public_numbers()
        assert (issuer.discovery_fetches, issuer.jwks_fetches) == (1, 1)

    def test_get_key_with_own_default_client(
        self, issuer: LocalIssuer, clock: FakeClock, key_a: SigningKey
    ) -> None:
        cache = JwksCache(
            TIMEOUT_S, CACHE_S, REFRESH_MIN_S, clock=clock, allow_insecure_loopback=True
        )
        try:
            assert cache.get_key(issuer.url, "key-a").key_id == "key-a"
        finally:
            cache.close()

    def test_get_key_fresh_cache_fetches_nothing(
        self, jwks: JwksCache, issuer: LocalIssuer, clock: FakeClock
    ) -> None:
        jwks.get_key(issuer.url, "key-a")
        clock.advance(CACHE_S - 1)
        for _ in range(5):
            jwks.get_key(issuer.url, "key-a")

        assert (issuer.discovery_fetches, issuer.jwks_fetches) == (1, 1)

    def test_get_key_discovery_naming_other_issuer_is_unavailable(
        self, jwks: JwksCache, issuer: LocalIssuer
    ) -> None:
        issuer.discovery_override = {"issuer": "https://evil.example", "jwks_uri": issuer.url}

        with pytest.raises(OidcProviderUnavailable):
            jwks.get_key(issuer.url, "key-a")
        assert issuer.jwks_fetches == 0

    def test_get_key_jwks_uri_not_https_is_unavailable(
        self, jwks: JwksCache, issuer: LocalIssuer
    ) -> None:
        issuer.discovery_override = {"issuer": issuer.url, "jwks_uri": "http://evil.example/jwks"}

        with pytest.raises(OidcProviderUnavailable):
            jwks.get_key(issuer.url, "key-a")


class TestIssuerUrl:
    @pytest.mark.parametrize(
        ("url", "loopback_ok", "allowed"),
        [
            ("https://token.actions.githubusercontent.com", False, True),
            ("https://gitlab.com", False, True),
            ("http://token.actions.githubusercontent.com", True, False),
            ("http://127.0.0.1:8080", False, False),
            ("http://127.0.0.1:8080", True, True),
            ("http://localhost:8080", True, True),
            ("http://[::1]:8080", True, True),
            ("http://10.0.0.1", True, False),
            ("https://user:pw@gitlab.com", False, False),
            ("ftp://gitlab.com", True, False),
            ("https://", False, False),
            ("gitlab.com", False, False),
        ],
    )
    def test_is_allowed_issuer_url(self, url: str, loopback_ok: bool, allowed: bool) -> None:
        assert is_allowed_issuer_url(url, allow_insecure_loopback=loopback_ok) is allowed

    def test_get_key_http_loopback_without_flag_is_refused_unfetched(
        self, issuer: LocalIssuer, clock: FakeClock
    ) -> None:
        cache = JwksCache(TIMEOUT_S, CACHE_S, REFRESH_MIN_S, clock=clock)

        with rejected("insecure_issuer"):
            cache.get_key(issuer.url, "key-a")
        assert issuer.discovery_fetches == 0


class TestRotation:
    def test_new_kid_refreshes_once_then_succeeds(
        self,
        jwks: JwksCache,
        issuer: LocalIssuer,
        clock: FakeClock,
        key_a: SigningKey,
        key_b: SigningKey,
    ) -> None:
        jwks.get_key(issuer.url, "key-a")
        clock.advance(REFRESH_MIN_S)
        issuer.keys = [key_a, key_b]

        jwks.get_key(issuer.url, "key-b")
        jwks.get_key(issuer.url, "key-b")

        assert issuer.jwks_fetches == 2
        assert issuer.discovery_fetches == 1  # jwks_uri stays cached
        assert jwks.cached_kids(issuer.url) == {"key-a", "key-b"}

    def test_unknown_kid_twice_within_refresh_min_fetches_once(
        self, jwks: JwksCache, issuer: LocalIssuer, clock: FakeClock
    ) -> None:
        jwks.get_key(issuer.url, "key-a")
        clock.advance(REFRESH_MIN_S)

        with rejected("unknown_kid"):
            jwks.get_key(issuer.url, "no-such-kid")
        clock.advance(REFRESH_MIN_S - 1)
        with rejected("unknown_kid"):
            jwks.get_key(issuer.url, "other-kid")
        assert issuer.jwks_fetches == 2

        clock.advance(1)
        with rejected("unknown_kid"):
            jwks.get_key(issuer.url, "no-such-kid")
        assert issuer.jwks_fetches == 3

    def test_new_kid_within_refresh_min_of_last_fetch_waits_for_window(
        self,
        jwks: JwksCache,
        issuer: LocalIssuer,
        clock: FakeClock,
        key_a: SigningKey,
        key_b: SigningKey,
    ) -> None:
        """The rate limit counts from the last fetch of any kind (warehouse semantics): an
        attacker's stream of made-up kids costs at most one fetch per window."""
        jwks.get_key(issuer.url, "key-a")
        issuer.keys = [key_a, key_b]

        with rejected("unknown_kid"):
            jwks.get_key(issuer.url, "key-b")
        clock.advance(REFRESH_MIN_S)

        assert jwks.get_key(issuer.url, "key-b").key_id == "key-b"
        assert issuer.jwks_fetches == 2

    def test_concurrent_requests_for_new_kid_share_one_refresh(
        self,
        jwks: JwksCache,
        issuer: LocalIssuer,
        clock: FakeClock,
        key_a: SigningKey,
        key_b: SigningKey,
    ) -> None:
        jwks.get_key(issuer.url, "key-a")
        clock.advance(REFRESH_MIN_S)
        issuer.keys = [key_a, key_b]
        barrier = threading.Barrier(16)

        def fetch(_: int) -> str | None:
            barrier.wait()
            return jwks.get_key(issuer.url, "key-b").key_id

        with ThreadPoolExecutor(16) as pool:
            kids = list(pool.map(fetch, range(16)))

        assert kids == ["key-b"] * 16
        assert issuer.jwks_fetches == 2

    def test_stale_cache_refreshes_from_healthy_issuer(
        self, jwks: JwksCache, issuer: LocalIssuer, clock: FakeClock
    ) -> None:
        jwks.get_key(issuer.url, "key-a")
        clock.advance(CACHE_S)

        jwks.get_key(issuer.url, "key-a")

        assert issuer.jwks_fetches == 2

    def test_key_dropped_by_issuer_is_unknown_after_refresh(
        self, jwks: JwksCache, issuer: LocalIssuer, clock: FakeClock, key_b: SigningKey
    ) -> None:
        jwks.get_key(issuer.url, "key-a")
        issuer.keys = [key_b]
        clock.advance(CACHE_S)

        with rejected("unknown_kid"):
            jwks.get_key(issuer.url, "key-a")


class TestBrokenIssuer:
    @pytest.mark.parametrize("mode", BROKEN_MODES)
    def test_broken_refresh_keeps_cached_keys_past_cache_lifetime(
        self,
        jwks: JwksCache,
        issuer: LocalIssuer,
        clock: FakeClock,
        key_a: SigningKey,
        mode: JwksMode,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        jwks.get_key(issuer.url, "key-a")
        clock.advance(CACHE_S + 1)
        issuer.mode = mode

        with caplog.at_level(logging.WARNING, logger="registry.oidc.jwks"), elapsed_under(BOUND_S):
            key = jwks.get_key(issuer.url, "key-a")

        assert key.key.public_numbers() == key_a.private.public_key().public_numbers()
        assert issuer.jwks_fetches == 2  # it tried once...
        assert jwks.cached_kids(issuer.url) == {"key-a"}  # ...and kept the old set
        assert any("past its cache lifetime" in r.getMessage() for r in caplog.records)

    @pytest.mark.parametrize("mode", BROKEN_MODES)
    def test_broken_refresh_unknown_kid_is_invalid_not_unavailable(
        self, jwks: JwksCache, issuer: LocalIssuer, clock: FakeClock, mode: JwksMode
    ) -> None:
        jwks.get_key(issuer.url, "key-a")
        clock.advance(REFRESH_MIN_S)
        issuer.mode = mode

        with elapsed_under(BOUND_S), rejected("unknown_kid"):
            jwks.get_key(issuer.url, "key-b")
        with rejected("unknown_kid"):
            jwks.get_key(issuer.url, "key-b")  # rate-limited: no second slow fetch
        assert issuer.jwks_fetches == 2
        assert jwks.get_key(issuer.url, "key-a").key_id == "key-a"

    def test_slow_issuer_does_not_block_known_kid_during_refresh(
        self, jwks: JwksCache, issuer: LocalIssuer, clock: FakeClock
    ) -> None:
        jwks.get_key(issuer.url, "key-a")
        clock.advance(CACHE_S + 1)
        issuer.mode = "slow"
        refresher = threading.Thread(target=jwks.get_key, args=(issuer.url, "key-a"), daemon=True)
        refresher.start()
        deadline = time.monotonic() + BOUND_S
        while issuer.jwks_fetches < 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # until the refresher holds the lock and its fetch hangs
        assert issuer.jwks_fetches == 2

        with elapsed_under(BOUND_S):
            assert jwks.get_key(issuer.url, "key-a").key_id == "key-a"
        refresher.join(BOUND_S)
        assert not refresher.is_alive()

    def test_issuer_stopped_cached_keys_keep_working(
        self, jwks: JwksCache, issuer: LocalIssuer, clock: FakeClock
    ) -> None:
        jwks.get_key(issuer.url, "key-a")
        issuer.stop()
        clock.advance(CACHE_S * 3)

        with elapsed_under(BOUND_S):
            assert jwks.get_key(issuer.url, "key-a").key_id == "key-a"
        with rejected("unknown_kid"):
            jwks.get_key(issuer.url, "key-b")

    def test_no_cache_and_issuer_stopped_is_unavailable(
        self, jwks: JwksCache, issuer: LocalIssuer
    ) -> None:
        issuer.stop()

        with elapsed_under(BOUND_S), pytest.raises(OidcProviderUnavailable):
            jwks.get_key(issuer.url, "key-a")

    @pytest.mark.parametrize("mode", BROKEN_MODES)
    def test_no_cache_and_broken_jwks_is_unavailable(
        self, jwks: JwksCache, issuer: LocalIssuer, clock: FakeClock, mode: JwksMode
    ) -> None:
        issuer.mode = mode

        with elapsed_under(BOUND_S), pytest.raises(OidcProviderUnavailable):
            jwks.get_key(issuer.url, "key-a")
        with pytest.raises(OidcProviderUnavailable):
            jwks.get_key(issuer.url, "key-a")  # rate-limited
        assert issuer.jwks_fetches == 1

        issuer.mode = "ok"
        clock.advance(REFRESH_MIN_S)
        assert jwks.get_key(issuer.url, "key-a").key_id == "key-a"  # recovers


class TestParseJwks:
    def test_keeps_only_rs256_signing_keys(self, key_a: SigningKey, key_b: SigningKey) -> None:
        small = SigningKey.generate("small", bits=1024)
        ec_jwk = jwt.algorithms.ECAlgorithm.to_jwk(
            ec.generate_private_key(ec.SECP256R1()).public_key(), as_dict=True
        )
        entries: list[Any] = [
            key_a.public_jwk(),
            key_b.public_jwk(use="enc", kid="enc"),
            key_b.public_jwk(alg="RS512", kid="rs512"),
            {**key_b.public_jwk(), "kid": ""},
            {k: v for k, v in key_b.public_jwk().items() if k != "kid"},
            small.public_jwk(),
            {**ec_jwk, "kid": "ec"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            "not-a-key",
            key_b.public_jwk(kid="key-a"),  # duplicate kid: the first one wins
        ]

        keys = parse_jwks({"keys": entries})

        assert set(keys) == {"key-a"}
        assert keys["key-a"].key.public_numbers() == key_a.private.public_key().public_numbers()

    def test_rsa_key_without_use_and_alg_is_accepted(self, key_a: SigningKey) -> None:
        jwk = {k: v for k, v in key_a.public_jwk().items() if k not in ("use", "alg")}

        assert set(parse_jwks({"keys": [jwk]})) == {"key-a"}

    @pytest.mark.parametrize(
        "doc",
        [{}, {"keys": []}, {"keys": "nope"}, {"keys": [{"kty": "EC", "kid": "x"}]}],
    )
    def test_no_usable_key_is_an_error(self, doc: dict[str, Any]) -> None:
        with pytest.raises(JwksFetchError):
            parse_jwks(doc)
