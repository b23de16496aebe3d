"""The HTTP layer of the client: the ``httpx`` session, retries with backoff, idempotency keys
and JSON calls."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Self

import httpx

from registry import __version__
from registry.client._errors import ClientError, error_from_response, is_retryable
from registry.client._refs import version_path

MAX_ATTEMPTS = 5
BACKOFF_BASE_S = 0.25
BACKOFF_CAP_S = 4.0
RETRY_AFTER_CAP_S = 10.0
DEFAULT_TIMEOUT_S = 60.0


class _Transport:
    """One ``httpx.Client`` to the registry, and the retrying request primitives."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        *,
        max_attempts: int = MAX_ATTEMPTS,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {"User-Agent": f"adapter-registry-cli/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base_url = base_url.rstrip("/")
        self.max_attempts = max(1, max_attempts)
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _backoff(self, attempt: int, response: httpx.Response | None) -> None:
        delay = min(BACKOFF_BASE_S * 2**attempt, BACKOFF_CAP_S)
        if response is not None:
            retry_after = response.headers.get("Retry-After", "")
            if retry_after.isdigit():
                delay = min(float(retry_after), RETRY_AFTER_CAP_S)
        self._sleep(delay * (0.5 + random.random() / 2))  # jitter, not crypto

    _error = staticmethod(error_from_response)
    _retryable = staticmethod(is_retryable)

    def _unavailable(self, exc: httpx.TransportError) -> ClientError:
        kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "unreachable"
        return ClientError(
            "server_unavailable",
            0,
            f"registry server at {self.base_url} {kind}: {exc}",
            {"server": self.base_url},
        )

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        content: Callable[[], Iterator[bytes]] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        """Send one request, retrying idempotent ones; return a 2xx response or raise."""
        hdrs = dict(headers or {})
        if idempotency_key is not None:
            hdrs["Idempotency-Key"] = idempotency_key
        retry = method in ("GET", "HEAD", "PUT") or idempotency_key is not None
        query = {k: v for k, v in (params or {}).items() if v is not None}
        attempts = self.max_attempts if retry else 1
        for attempt in range(attempts):
            try:
                response = self._http.request(
                    method,
                    path,
                    params=query or None,
                    json=json_body,
                    content=content() if content is not None else None,
                    headers=hdrs,
                )
            except httpx.TransportError as exc:
                if attempt + 1 >= attempts:
                    raise self._unavailable(exc) from exc
                self._backoff(attempt, None)
                continue
            if response.is_success:
                return response
            if attempt + 1 < attempts and self._retryable(response):
                self._backoff(attempt, response)
                continue
            raise self._error(response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise ClientError(
                "bad_response", response.status_code, "the server did not answer JSON"
            ) from exc

    @staticmethod
    def _key(idempotency_key: str | None) -> str:
        return idempotency_key or str(uuid.uuid4())

    @staticmethod
    def _page(limit: int | None, page_token: str | None) -> dict[str, Any]:
        return {"limit": limit, "page_token": page_token}

    _version_path = staticmethod(version_path)
