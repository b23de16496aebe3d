"""Client-side routing for serving gateways: resolve (deployment, key) → adapter version locally.

A :class:`Router` keeps each deployment's routing table (``GET /api/v1/deployments/{d}/
routing-table``) and answers :meth:`Router.resolve` from memory with the registry's own split
(:mod:`registry.canary.hashing`, spec ``sha256-salt-key-v1``), so it gives the same arm as the
server's ``/resolve`` for the same revision. A table older than ``refresh_s`` is refreshed on
the next resolve with a conditional request (``If-None-Match``; 304 keeps it); if that fails the
cached table keeps serving (a warning is logged, the next attempt is ``refresh_s`` later). A
deployment whose table was never fetched raises :class:`RouterError`.

Hot path (a cached, fresh table): one dict lookup, one clock read, then either the pre-built
route (share 0 or 10000: no hashing), a bounded per-revision cache of key → route, or one
sha256 of the key fed to a copy of a hasher already fed the ``salt ":"`` prefix (no
concatenation), its first 8 bytes read as a big-endian uint64 by a pre-compiled ``struct``.

Thread-safe: refreshes are serialised by a lock; while one thread refreshes, others keep
answering from the cached table. The table format and the spec are in ``docs/serving.md``.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Callable, Mapping
from hashlib import sha256
from typing import TYPE_CHECKING, Any, NamedTuple

from registry.canary.hashing import (
    BUCKETS,
    CANDIDATE,
    HASH_SPEC_V1,
    MAX_KEY_CHARS,
    MAX_SHARE_BP,
    STABLE,
    Arm,
    check_key,
    check_salt,
    check_share_bp,
)

if TYPE_CHECKING:
    from registry.client import RegistryClient

log = logging.getLogger(__name__)

#: fetch(deployment, etag) -> (200 | 304, table | None, etag | None); may raise on failure.
Fetch = Callable[[str, str | None], tuple[int, dict[str, Any] | None, str | None]]

DEFAULT_REFRESH_S = 5.0
DEFAULT_CACHE_SIZE = 65_536
_ROUTE_KEYS = ("ref", "version", "digest", "serving_name")
_uint64_be = struct.Struct(">Q").unpack_from


class RouterError(KeyError):
    """No usable routing table for a deployment (never fetched successfully)."""

    def __init__(self, deployment: str, detail: str) -> None:
        super().__init__(deployment)
        self.deployment = deployment
        self.detail = detail

    def __str__(self) -> str:
        return f"no routing table for deployment {self.deployment!r}: {self.detail}"


class Route(NamedTuple):
    """Where one key goes: the arm and the adapter version serving it."""

    arm: Arm
    ref: str
    version: int
    digest: str
    serving_name: str
    revision: int


def _route(arm: Arm, raw: object, revision: int) -> Route:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{arm}: must be an object")
    ref, version, digest, serving_name = (raw.get(k) for k in _ROUTE_KEYS)
    if not (isinstance(version, int) and not isinstance(version, bool)):
        raise ValueError(f"{arm}.version: must be an integer")
    for name, value in (("ref", ref), ("digest", digest), ("serving_name", serving_name)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{arm}.{name}: must be a non-empty string")
    return Route(arm, str(ref), version, str(digest), str(serving_name), revision)


class _Table:
    """One deployment's parsed routing table and what the hot path needs of it."""

    __slots__ = (
        "cache",
        "cache_limit",
        "candidate",
        "etag",
        "expires",
        "fixed",
        "prefix",
        "raw",
        "revision",
        "salted",
        "share_bp",
        "split_candidate",
        "stable",
    )

    def __init__(
        self, deployment: str, raw: object, etag: str | None, expires: float, cache_limit: int
    ) -> None:
        if not isinstance(raw, dict):
            raise ValueError("routing table: must be a JSON object")
        if raw.get("deployment") != deployment:
            raise ValueError(f"routing table is for {raw.get('deployment')!r}")
        if raw.get("hash_spec") != HASH_SPEC_V1:
            raise ValueError(f"unsupported hash_spec {raw.get('hash_spec')!r}")
        revision = raw.get("revision")
        if not isinstance(revision, int) or isinstance(revision, bool):
            raise ValueError("revision: must be an integer")
        share_bp = check_share_bp(raw.get("share_bp"))
        salt = check_salt(raw.get("salt"))
        self.stable = _route(STABLE, raw.get("stable"), revision)
        cand = raw.get("candidate")
        self.candidate = None if cand is None else _route(CANDIDATE, cand, revision)
        if self.candidate is None and share_bp:
            raise ValueError("share_bp > 0 without a candidate")
        self.raw, self.etag, self.expires = raw, etag, expires
        self.revision, self.share_bp = revision, share_bp
        self.prefix = (salt + ":").encode("utf-8")
        self.salted = sha256(self.prefix)  # copied per key: the prefix is hashed once
        self.split_candidate = self.candidate or self.stable  # share_bp > 0 → the candidate
        self.fixed: Route | None = None
        if share_bp == 0:
            self.fixed = self.stable
        elif share_bp == MAX_SHARE_BP:
            self.fixed = self.candidate
        self.cache: dict[str, Route] = {}
        self.cache_limit = cache_limit

    def same_routing(self, other: _Table) -> bool:
        return (self.prefix, self.share_bp, self.stable, self.candidate) == (
            other.prefix,
            other.share_bp,
            other.stable,
            other.candidate,
        )


class Router:
    """Resolve (deployment, key) → :class:`Route` from cached routing tables."""

    def __init__(
        self,
        fetch: Fetch,
        *,
        refresh_s: float = DEFAULT_REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        """``cache_size``: keys remembered per table revision (0 = none); a full cache is
        emptied, which bounds memory at ``cache_size`` entries per deployment."""
        if refresh_s < 0 or cache_size < 0:
            raise ValueError("refresh_s and cache_size must be >= 0")
        self._fetch = fetch
        self._refresh_s = float(refresh_s)
        self._clock = clock
        self._cache_size = cache_size
        self._tables: dict[str, _Table] = {}
        self._failed: dict[str, tuple[float, str]] = {}  # never fetched: (retry at, why)
        self._lock = threading.Lock()

    @classmethod
    def from_client(
        cls,
        client: RegistryClient,
        *,
        timeout_s: float = 2.0,
        refresh_s: float = DEFAULT_REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> Router:
        """A router fetching over ``client``'s HTTP session (its base URL and token)."""
        return cls(
            client_fetch(client, timeout_s=timeout_s),
            refresh_s=refresh_s,
            clock=clock,
            cache_size=cache_size,
        )

    # --- hot path ------------------------------------------------------------------------

    def resolve(self, deployment: str, key: str) -> Route:
        """The route of ``key`` (1..1024 characters, no NUL; ValueError otherwise).

        RouterError when the deployment's table was never fetched successfully."""
        table = self._tables.get(deployment)
        if table is None or self._clock() >= table.expires:
            table = self._refresh(deployment, table)
        route = table.fixed
        if route is None:  # a split: a remembered key (validated when it was hashed), else hash
            cache = table.cache
            route = cache.get(key)
            if route is not None:
                return route
            if key.__class__ is str and 0 < len(key) <= MAX_KEY_CHARS and "\x00" not in key:
                hasher = table.salted.copy()
                hasher.update(key.encode())  # UTF-8; UnicodeEncodeError for lone surrogates
                if _uint64_be(hasher.digest())[0] % BUCKETS < table.share_bp:
                    route = table.split_candidate
                else:
                    route = table.stable
                if table.cache_limit:
                    if len(cache) >= table.cache_limit:
                        cache.clear()
                    cache[key] = route
                return route
        elif (
            key.__class__ is str
            and 0 < len(key) <= MAX_KEY_CHARS
            and "\x00" not in key
            and (key.isascii() or key.encode("utf-8"))  # UnicodeEncodeError as when hashing
        ):
            return route  # share 0 or 10000: every valid key gets the same route, no hashing
        check_key(key)
        raise AssertionError("unreachable")  # pragma: no cover

    # --- tables --------------------------------------------------------------------------

    def refresh(self, deployment: str) -> int:
        """Fetch ``deployment``'s table now (conditionally); its revision. RouterError when it
        fails and nothing is cached."""
        with self._lock:
            return self._fetch_table(deployment, self._tables.get(deployment)).revision

    def invalidate(self, deployment: str | None = None) -> None:
        """Make the next resolve refresh (one deployment, or all); the cached tables stay."""
        with self._lock:
            self._failed.clear()
            for name, table in self._tables.items():
                if deployment is None or name == deployment:
                    table.expires = -float("inf")

    def table(self, deployment: str) -> dict[str, Any] | None:
        """The cached routing table as the server sent it, or ``None``."""
        table = self._tables.get(deployment)
        return None if table is None else table.raw

    def _refresh(self, deployment: str, current: _Table | None) -> _Table:
        # with a table in hand, never wait for another thread's refresh: serve the cached one
        if not self._lock.acquire(blocking=current is None):
            assert current is not None
            return current
        try:
            latest = self._tables.get(deployment)
            if latest is not None and self._clock() < latest.expires:
                return latest  # refreshed by another thread meanwhile
            if latest is None:
                failed = self._failed.get(deployment)
                if failed is not None and self._clock() < failed[0]:
                    raise RouterError(deployment, failed[1])
            return self._fetch_table(deployment, latest)
        finally:
            self._lock.release()

    def _fetch_table(self, deployment: str, latest: _Table | None) -> _Table:
        """Fetch with the lock held; keep ``latest`` serving when that fails."""
        now = self._clock()
        expires = now + self._refresh_s
        try:
            status, body, etag = self._fetch(deployment, None if latest is None else latest.etag)
            if status == 304 and latest is not None:
                latest.expires, latest.etag = expires, etag or latest.etag
                return latest
            if status != 200:
                raise ValueError(f"unexpected status {status}")
            table = _Table(deployment, body, etag, expires, self._cache_size)
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"
            if latest is None:
                self._failed[deployment] = (expires, detail)
                raise RouterError(deployment, detail) from exc
            log.warning(
                "routing table refresh of %r failed, still serving revision %d: %s",
                deployment,
                latest.revision,
                detail,
            )
            latest.expires = expires
            return latest
        if latest is not None and table.same_routing(latest):
            table.cache = latest.cache
        self._failed.pop(deployment, None)
        self._tables[deployment] = table
        return table


def client_fetch(client: RegistryClient, *, timeout_s: float = 2.0) -> Fetch:
    """``fetch`` over a :class:`RegistryClient`'s HTTP session (one attempt, no retries: the
    router retries at its next refresh). Error answers raise the client's ``ClientError``."""

    def fetch(deployment: str, etag: str | None) -> tuple[int, dict[str, Any] | None, str | None]:
        return client.fetch_routing_table(deployment, etag, timeout_s=timeout_s)

    return fetch
