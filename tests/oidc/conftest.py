"""Fixtures for the OIDC verifier tests: keys, a local issuer, a fake clock, the verifier."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from registry.oidc import JwksCache, OidcVerifier, PublisherSpec
from tests.oidc.local_issuer import AUDIENCE, FakeClock, LocalIssuer, SigningKey

TIMEOUT_S = 0.5
CACHE_S = 3600.0
REFRESH_MIN_S = 60.0
LEEWAY_S = 30
MAX_TOKEN_AGE_S = 3600


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loopback issuer must be reached directly, whatever proxy the environment sets."""
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def key_a() -> SigningKey:
    return SigningKey.generate("key-a")


@pytest.fixture(scope="session")
def key_b() -> SigningKey:
    return SigningKey.generate("key-b")


@pytest.fixture(scope="session")
def evil_key_a() -> SigningKey:
    """Another private key that claims the issuer's ``kid``."""
    return SigningKey.generate("key-a")


@pytest.fixture
def issuer(key_a: SigningKey) -> Iterator[LocalIssuer]:
    server = LocalIssuer([key_a]).start()
    yield server
    server.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def http_client() -> Iterator[httpx.Client]:
    """One client for the whole run (building one loads the CA bundle: ~60 ms); no proxies."""
    with httpx.Client(trust_env=False) as client:
        yield client


@pytest.fixture
def jwks(clock: FakeClock, http_client: httpx.Client) -> JwksCache:
    return JwksCache(
        TIMEOUT_S,
        CACHE_S,
        REFRESH_MIN_S,
        clock=clock,
        client=http_client,
        allow_insecure_loopback=True,
    )


@pytest.fixture
def verifier(jwks: JwksCache, clock: FakeClock) -> OidcVerifier:
    return OidcVerifier(jwks, leeway_s=LEEWAY_S, max_token_age_s=MAX_TOKEN_AGE_S, clock=clock)


@pytest.fixture
def spec(issuer: LocalIssuer) -> PublisherSpec:
    """The publisher ``github_claims`` tokens are made for."""
    return PublisherSpec(
        issuer=issuer.url,
        audience=AUDIENCE,
        repository="acme/trainer",
        repository_owner_id="1001",
        workflow_ref="acme/trainer/.github/workflows/train.yml",
        ref="refs/heads/main",
        environment="prod",
    )


@pytest.fixture
def gitlab_spec(issuer: LocalIssuer) -> PublisherSpec:
    """The publisher ``gitlab_claims`` tokens are made for."""
    return PublisherSpec(
        issuer=issuer.url,
        audience=AUDIENCE,
        repository="acme/trainer",
        repository_owner_id="77",
        workflow_ref="gitlab.example.com/acme/trainer//.gitlab-ci.yml",
        ref="refs/heads/main",
        environment="prod",
        kind="gitlab",
    )
