"""Why the S3 store is unavailable, as a stable ``reason``, and a log line when that changes.

Every StorageUnavailable raised for S3 carries ``reason`` in its context (besides ``s3_error``,
the store's own code): ``/readyz`` shows it as ``storage_unavailable:<reason>`` and 503 bodies
carry it, so an operator sees *what* to fix without reading logs. The reasons are part of the
API (docs/operations.md lists them):

``no_such_bucket``, ``access_denied``, ``bad_credentials`` (unknown key id, wrong secret,
expired session token), ``missing_credentials`` (none in the settings nor in boto3's chain),
``clock_skew``, ``throttled``, ``server_error`` (5xx), ``unreachable`` (no connection: wrong
endpoint, DNS, refused), ``timeout``, ``unexpected_answer`` (an answer that is no S3 answer:
the endpoint is some other HTTP server), ``circuit_open`` (registry.storage.breaker).

Neither the reason nor the log line holds a secret: the endpoint and bucket are named, keys
never.
"""

from __future__ import annotations

import logging
import threading

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from registry.errors import BlobNotFound, StorageUnavailable

logger = logging.getLogger("registry.storage.s3")

_CODE_REASONS = {
    "NoSuchBucket": "no_such_bucket",
    "AccessDenied": "access_denied",
    "403": "access_denied",
    "InvalidAccessKeyId": "bad_credentials",
    "SignatureDoesNotMatch": "bad_credentials",
    "ExpiredToken": "bad_credentials",
    "InvalidToken": "bad_credentials",
    "RequestTimeTooSkewed": "clock_skew",
    "SlowDown": "throttled",
    "Throttling": "throttled",
    "ThrottlingException": "throttled",
    "RequestTimeout": "timeout",
}


def _code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return type(exc).__name__


def client_error_reason(code: str, status: int) -> str:
    """The reason of an S3 error answer (``code``, HTTP ``status``)."""
    if code in _CODE_REASONS:
        return _CODE_REASONS[code]
    if status >= 500 or code in ("ServiceUnavailable", "InternalError"):
        return "server_error"
    return "unexpected_answer"


def transport_reason(exc: BotoCoreError) -> str:
    """The reason of a failure without an S3 answer."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return "missing_credentials"
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError):
        return "timeout"
    return "unreachable"


class CheckLog:
    """Logs the store's health check when its outcome changes: a warning with the cause when
    it starts failing (or fails for another reason), an info line when it recovers. A probe
    polled every few seconds thus logs once per change, not once per probe."""

    def __init__(self, *, endpoint: str | None, bucket: str) -> None:
        self._where = f"bucket {bucket!r} at {endpoint or 'AWS S3'}"
        self._lock = threading.Lock()
        self._reason: str | None = None

    def failed(self, exc: Exception) -> StorageUnavailable:
        """The StorageUnavailable to raise for what HEAD bucket raised (``exc`` itself when it
        is one already), logged if its reason is new."""
        if isinstance(exc, StorageUnavailable):
            failure, cause = exc, exc.__cause__
        else:
            # HEAD has no body, so a missing bucket is a bare 404 (BlobNotFound), not
            # NoSuchBucket; any other error answer to HEAD bucket is none S3 gives.
            missing = isinstance(exc, BlobNotFound)
            code = "404" if missing else _code(exc)
            failure = StorageUnavailable(
                "bucket not found" if missing else "the endpoint gave no S3 answer",
                context={
                    "s3_error": code,
                    "reason": "no_such_bucket" if missing else "unexpected_answer",
                },
            )
            cause = exc.__cause__ or exc
        self._log(str(failure.context.get("reason")), cause)
        return failure

    def _log(self, reason: str, cause: BaseException | None) -> None:
        with self._lock:
            # An open breaker says nothing new about a store already known to be failing.
            if reason == self._reason or (reason == "circuit_open" and self._reason):
                return
            self._reason = reason
        logger.warning(
            "S3 store unavailable (%s): %s: %s",
            reason,
            self._where,
            f"{type(cause).__name__}: {cause}" if cause is not None else "no cause",
        )

    def ok(self) -> None:
        with self._lock:
            was, self._reason = self._reason, None
        if was is not None:
            logger.info("S3 store available again: %s (was %s)", self._where, was)
