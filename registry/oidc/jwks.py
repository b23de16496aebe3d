"""Per-issuer JWKS cache for CI OIDC tokens (GitHub Actions, GitLab).

Behaviour copied from PyPI's warehouse (``warehouse/oidc/``): keys are cached per issuer and
keyed by ``kid``; an unknown ``kid`` refreshes the set at most once per ``refresh_min_s``; a
failed or unusable response **never** replaces the cache. Known keys therefore keep working
while the issuer is down, also past ``cache_s`` (with a warning), and a slow issuer costs at
most about two bounded fetches (discovery + JWKS) per request, and only for the request that
holds the issuer's refresh lock.

Pure module: no database, no FastAPI. Thread-safe (FastAPI runs sync routes in a pool).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from registry.errors import OidcProviderUnavailable, OidcTokenInvalid

logger = logging.getLogger(__name__)

MAX_DOCUMENT_BYTES = 512 * 1024
"""Discovery documents and key sets are small; anything larger is refused unread."""

MIN_RSA_BITS = 2048
_LOOPBACK_HOSTS = frozenset({"localhost"})


class JwksFetchError(Exception):
    """A discovery, JWKS or token fetch failed (``fetch_json``); the JWKS cache turns it into
    ``OidcProviderUnavailable`` and never lets it out."""

    def __init__(self, message: str, *, status: int = 0, error: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error


def is_allowed_issuer_url(url: str, *, allow_insecure_loopback: bool = False) -> bool:
    """Whether ``url`` may be contacted: ``https://host``, or ``http://`` on loopback if allowed.

    Also used for the discovered ``jwks_uri``. Callers that configure publishers can use it to
    refuse a bad issuer up front.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if not host or parts.username is not None or parts.password is not None:
        return False
    if parts.query or parts.fragment:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and allow_insecure_loopback and _is_loopback(host)


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class _IssuerState:
    """What we know about one issuer. ``keys`` is replaced as a whole, never mutated in place,
    so the lock-free fast path in ``get_key`` always sees a complete set."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    keys: Mapping[str, jwt.PyJWK] = field(default_factory=dict)
    fetched_at: float | None = None
    """Clock value of the last successful JWKS fetch (None: never)."""
    last_attempt: float | None = None
    """Clock value of the last refresh attempt, successful or not (rate limit)."""
    jwks_uri: str | None = None
    discovered_at: float | None = None


class JwksCache:
    """Fetches and caches the signing keys of OIDC issuers.

    ``clock`` is monotonic seconds (tests pass a fake one). ``client`` is an optional shared
    ``httpx.Client``; every request passes its own ``timeout_s`` so the bound holds either way,
    and redirects are never followed.
    """

    def __init__(
        self,
        timeout_s: float,
        cache_s: float,
        refresh_min_s: float,
        clock: Callable[[], float] = time.monotonic,
        client: httpx.Client | None = None,
        *,
        allow_insecure_loopback: bool = False,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self._timeout_s = float(timeout_s)
        self._cache_s = float(cache_s)
        self._refresh_min_s = float(refresh_min_s)
        self._clock = clock
        self._owns_client = client is None
        self._client = client or httpx.Client(follow_redirects=False)
        self._allow_insecure_loopback = allow_insecure_loopback
        self._issuers: dict[str, _IssuerState] = {}
        self._issuers_lock = threading.Lock()

    # --- public --------------------------------------------------------------------------

    def get_key(self, issuer: str, kid: str) -> jwt.PyJWK:
        """Return the issuer's RS256 verification key named ``kid``.

        Raises ``OidcTokenInvalid`` (reason ``unknown_kid``) when the issuer does not publish
        that key (after at most one rate-limited refresh), ``OidcTokenInvalid`` (reason
        ``insecure_issuer``) for an issuer URL that is neither https nor allowed loopback, and
        ``OidcProviderUnavailable`` when no key set was ever fetched and the issuer is down.
        """
        if not is_allowed_issuer_url(issuer, allow_insecure_loopback=self._allow_insecure_loopback):
            raise OidcTokenInvalid(
                "The OIDC issuer URL is not an allowed https URL.",
                context={"reason": "insecure_issuer", "issuer": issuer},
            )
        state = self._state(issuer)

        # Fast path, no lock: a known kid from a fresh set.
        key = state.keys.get(kid)
        if key is not None and not self._is_stale(state):
            return key

        if key is not None:
            # Known kid but the set is stale. Never queue behind another thread's refresh:
            # the cached key is good enough while someone else fetches.
            if not state.lock.acquire(blocking=False):
                return key
            try:
                return self._refresh_known(issuer, state, kid, key)
            finally:
                state.lock.release()

        with state.lock:
            # Another thread may have refreshed while we waited for the lock.
            key = state.keys.get(kid)
            if key is not None:
                return key
            if self._may_refresh(state):
                self._refresh(issuer, state)
                key = state.keys.get(kid)
                if key is not None:
                    return key
            if not state.keys:
                raise OidcProviderUnavailable(
                    "The OIDC issuer's signing keys could not be fetched.",
                    context={"issuer": issuer},
                )
        raise OidcTokenInvalid(
            "The token was signed with a key the issuer does not publish.",
            context={"reason": "unknown_kid", "issuer": issuer, "kid": kid},
        )

    def sole_key(self, issuer: str) -> jwt.PyJWK:
        """The issuer's only signing key, for a token whose header names none (OpenID Connect
        Core §10.1 lets an issuer with a single key omit ``kid``). Several keys: ``missing_kid``;
        same refresh rules and errors as ``get_key``."""
        if not is_allowed_issuer_url(issuer, allow_insecure_loopback=self._allow_insecure_loopback):
            raise OidcTokenInvalid(
                "The OIDC issuer URL is not an allowed https URL.",
                context={"reason": "insecure_issuer", "issuer": issuer},
            )
        state = self._state(issuer)
        if not state.keys or self._is_stale(state):
            with state.lock:
                if (not state.keys or self._is_stale(state)) and self._may_refresh(state):
                    self._refresh(issuer, state)
        keys = state.keys
        if not keys:
            raise OidcProviderUnavailable(
                "The OIDC issuer's signing keys could not be fetched.", context={"issuer": issuer}
            )
        if len(keys) != 1:
            raise OidcTokenInvalid(
                "The token names no key id ('kid') and the issuer publishes several keys.",
                context={"reason": "missing_kid", "issuer": issuer},
            )
        return next(iter(keys.values()))

    def cached_kids(self, issuer: str) -> frozenset[str]:
        """The key ids currently cached for ``issuer`` (diagnostics and tests)."""
        state = self._issuers.get(issuer)
        return frozenset(state.keys) if state else frozenset()

    def close(self) -> None:
        """Close the HTTP client if this cache created it (a shared one is the caller's)."""
        if self._owns_client:
            self._client.close()

    # --- refresh -------------------------------------------------------------------------

    def _state(self, issuer: str) -> _IssuerState:
        state = self._issuers.get(issuer)
        if state is None:
            with self._issuers_lock:
                state = self._issuers.setdefault(issuer, _IssuerState())
        return state

    def _is_stale(self, state: _IssuerState) -> bool:
        return state.fetched_at is None or self._clock() - state.fetched_at >= self._cache_s

    def _may_refresh(self, state: _IssuerState) -> bool:
        return (
            state.last_attempt is None or self._clock() - state.last_attempt >= self._refresh_min_s
        )

    def _refresh_known(
        self, issuer: str, state: _IssuerState, kid: str, cached: jwt.PyJWK
    ) -> jwt.PyJWK:
        """Refresh a stale set on behalf of a known kid (caller holds the lock)."""
        if self._is_stale(state) and self._may_refresh(state):
            self._refresh(issuer, state)
        if self._is_stale(state):
            # The refresh failed or is rate-limited: keep serving the last good set.
            logger.warning(
                "OIDC issuer %s: serving cached JWKS key %r past its cache lifetime "
                "(the issuer could not be refreshed)",
                issuer,
                kid,
            )
            return cached
        key = state.keys.get(kid)
        if key is None:
            # The issuer dropped the key in a successful refresh: it is retired.
            raise OidcTokenInvalid(
                "The token was signed with a key the issuer no longer publishes.",
                context={"reason": "unknown_kid", "issuer": issuer, "kid": kid},
            )
        return key

    def _refresh(self, issuer: str, state: _IssuerState) -> bool:
        """Fetch the issuer's JWKS; on success replace the cache. Never raises."""
        state.last_attempt = self._clock()
        try:
            jwks_uri = self._jwks_uri(issuer, state)
            try:
                keys = parse_jwks(self._get_json(jwks_uri))
            except JwksFetchError:
                # The jwks_uri may have moved: rediscover on the next attempt.
                state.jwks_uri = None
                raise
        except JwksFetchError as exc:
            logger.warning("OIDC issuer %s: JWKS refresh failed: %s", issuer, exc)
            return False
        state.keys = keys
        state.fetched_at = self._clock()
        logger.info("OIDC issuer %s: fetched %d signing key(s)", issuer, len(keys))
        return True

    def _jwks_uri(self, issuer: str, state: _IssuerState) -> str:
        now = self._clock()
        if (
            state.jwks_uri is not None
            and state.discovered_at is not None
            and now - state.discovered_at < self._cache_s
        ):
            return state.jwks_uri
        doc = self._get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
        if doc.get("issuer") != issuer:
            raise JwksFetchError(f"discovery document names issuer {doc.get('issuer')!r}")
        uri = doc.get("jwks_uri")
        if not isinstance(uri, str) or not is_allowed_issuer_url(
            uri, allow_insecure_loopback=self._allow_insecure_loopback
        ):
            raise JwksFetchError(f"discovery document has an unusable jwks_uri: {uri!r}")
        state.jwks_uri = uri
        state.discovered_at = now
        return uri

    def _get_json(self, url: str) -> dict[str, Any]:
        return fetch_json(self._client, url, timeout_s=self._timeout_s)


def fetch_json(
    client: httpx.Client,
    url: str,
    *,
    timeout_s: float,
    form: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """GET (or, with ``form``, POST urlencoded) a small JSON object, bounded in time
    (``timeout_s`` per phase and overall) and size, never following redirects. Every failure
    becomes ``JwksFetchError``; a non-200 answer carries its status and, when it is a small JSON
    object, OAuth's ``error`` code (``JwksFetchError.status``, ``.error``)."""
    deadline = time.monotonic() + timeout_s
    body = bytearray()
    status = 0
    try:
        with client.stream(
            "POST" if form is not None else "GET",
            url,
            data=form,
            auth=auth,
            timeout=httpx.Timeout(timeout_s),
            headers={"Accept": "application/json"},
            follow_redirects=False,
        ) as response:
            status = response.status_code
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise JwksFetchError(f"{url}: response too large", status=status)
                if time.monotonic() > deadline:
                    raise JwksFetchError(f"{url}: response too slow", status=status)
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, OSError) as exc:
        raise JwksFetchError(f"{url} failed: {type(exc).__name__}: {exc}") from exc
    try:
        doc = json.loads(bytes(body))
    except ValueError:
        doc = None
    if status != 200:
        error = doc.get("error") if isinstance(doc, dict) else None
        raise JwksFetchError(
            f"{url} returned HTTP {status}",
            status=status,
            error=error[:64] if isinstance(error, str) else None,
        )
    if not isinstance(doc, dict):
        raise JwksFetchError(f"{url}: response is not a JSON object")
    return doc


def parse_jwks(doc: Mapping[str, Any]) -> dict[str, jwt.PyJWK]:
    """Keep the usable signing keys of a JWK Set: ``kty`` RSA, ``use`` sig and ``alg`` RS256
    when present, a ``kid``, a public key of at least 2048 bits. Raises ``JwksFetchError`` when
    none is left, so an empty or foreign set never replaces a good cache."""
    raw = doc.get("keys")
    if not isinstance(raw, list):
        raise JwksFetchError("JWKS has no 'keys' list")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in raw:
        if not isinstance(entry, dict):
            continue
        kid = entry.get("kid")
        if (
            entry.get("kty") != "RSA"
            or entry.get("use", "sig") != "sig"
            or entry.get("alg", "RS256") != "RS256"
            or not isinstance(kid, str)
            or not kid
            or kid in keys
        ):
            continue
        try:
            key = jwt.PyJWK(entry, algorithm="RS256")
        except (jwt.PyJWTError, ValueError, TypeError):
            continue
        public = key.key
        if not isinstance(public, RSAPublicKey) or public.key_size < MIN_RSA_BITS:
            continue
        keys[kid] = key
    if not keys:
        raise JwksFetchError("JWKS contains no usable RS256 signing key")
    return keys
