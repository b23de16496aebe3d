"""S3 building blocks: client construction, error mapping, ranged reader, multipart writer.

Invariants:
- The client is built from :class:`StorageSettings` when a store is constructed (app start-up),
  never at import (STYLE.md §3.6, the Polar anti-pattern).
- botocore errors never leak: connection problems, throttling, 5xx and credential/bucket
  misconfiguration become StorageUnavailable (503, retryable); a missing key becomes
  BlobNotFound. Only genuinely unexpected client errors propagate (and surface as 500).
- The multipart writer holds at most one part in memory; S3 part checksums (when enabled) are
  transport protection only — the object's identity is the sha256 hashed here, in flight.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError
from botocore.response import StreamingBody

from registry.errors import BlobNotFound, IntegrityFailure, PayloadTooLarge, StorageUnavailable
from registry.settings import StorageSettings
from registry.storage.base import StagedObject
from registry.storage.breaker import CircuitBreaker
from registry.storage.s3_health import CheckLog, client_error_reason, transport_reason

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

MAX_PARTS = 10_000  # S3's hard limit on parts per multipart upload
CHECKSUM_ALGORITHM = "CRC32"  # what s3transfer uses under "when_supported"

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404", "NoSuchUpload"})
# Misconfiguration (wrong bucket or credentials) is an outage from the caller's point of view:
# readiness fails and requests get a retryable 503 rather than a 500 with internals.
_UNAVAILABLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "ServiceUnavailable",
        "InternalError",
        "NoSuchBucket",
        "AccessDenied",
        "403",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
    }
)


def build_client(settings: StorageSettings) -> S3Client:
    """Build an S3 client with explicit timeouts, standard retries and checksum mode."""
    # MinIO / moto / Ceph: virtual-hosted addressing needs wildcard DNS they rarely have.
    addressing: Literal["path", "auto"] = "path" if settings.endpoint_url else "auto"
    config = Config(
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
        # botocore's "max_attempts" counts *retries* (total = n + 1); the setting means attempts
        # per call, which is botocore's "total_max_attempts".
        retries={"total_max_attempts": settings.max_attempts, "mode": "standard"},
        # boto3 >= 1.36 adds CRC headers by default, which many S3-compatible stores reject
        # (security.md §5.2); "when_required" is the compatible default.
        request_checksum_calculation=settings.checksum_mode,
        response_checksum_validation=settings.checksum_mode,
        s3={"addressing_style": addressing},
    )
    # A private Session: boto3's default session is not safe to create clients from
    # concurrently, and must not pick up state from other code in the process.
    session = boto3.session.Session()
    client = session.client(
        "s3",
        endpoint_url=settings.endpoint_url,
        region_name=settings.region,
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=settings.secret_access_key,
        config=config,
    )
    CircuitBreaker(
        threshold=settings.breaker_threshold, cooldown_s=settings.breaker_cooldown_s
    ).attach(client)
    return client


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def translate(exc: Exception, *, what: str = "object") -> Exception:
    """Map a boto error to the registry error to raise (or return ``exc`` unchanged)."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _NOT_FOUND_CODES or (status == 404 and code != "NoSuchBucket"):
            return BlobNotFound(f"{what} not found")
        if status >= 500 or code in _UNAVAILABLE_CODES:
            return StorageUnavailable(
                "object store unavailable",
                context={"s3_error": code, "reason": client_error_reason(code, status)},
            )
        return exc
    if isinstance(exc, BotoCoreError) and not isinstance(exc, ParamValidationError):
        # Connection refused/reset, timeouts, missing credentials: all retryable outages.
        return StorageUnavailable(
            "object store unreachable",
            context={"s3_error": type(exc).__name__, "reason": transport_reason(exc)},
        )
    return exc


@contextlib.contextmanager
def s3_errors(what: str = "object") -> Iterator[None]:
    """Re-raise botocore errors as registry errors (see :func:`translate`)."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        mapped = translate(exc, what=what)
        if mapped is exc:
            raise
        raise mapped from exc


class S3ByteSource:
    """A finished S3 object read with ranged GETs (validators read headers, not whole files).

    Every range is fetched with ``If-Match`` on the ETag seen at HEAD time, so a reader can
    never stitch together bytes of two different objects.
    """

    def __init__(self, client: S3Client, bucket: str, key: str, *, what: str = "object") -> None:
        self._client = client
        self._bucket = bucket
        self._key = key
        with s3_errors(what):
            head = client.head_object(Bucket=bucket, Key=key)
        self._size = int(head["ContentLength"])
        self._etag = str(head["ETag"])

    @property
    def size(self) -> int:
        return self._size

    def read_at(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("negative offset or length")
        if length == 0 or offset >= self._size:
            return b""
        end = min(offset + length, self._size) - 1
        try:
            with s3_errors():
                resp = self._client.get_object(
                    Bucket=self._bucket,
                    Key=self._key,
                    Range=f"bytes={offset}-{end}",
                    IfMatch=self._etag,
                )
                with contextlib.closing(resp["Body"]) as body:
                    return body.read()
        except ClientError as exc:
            if error_code(exc) == "PreconditionFailed":
                raise IntegrityFailure("object changed while being read") from exc
            raise


class S3StagingWriter:
    """Streams one staging object to S3, hashing in flight.

    Bytes accumulate in a buffer of at most one part (``part_size``). A file smaller than one
    part becomes a single ``put_object`` at :meth:`finish`; a larger one a multipart upload
    whose full parts are sent as soon as they fill. :meth:`abort` aborts the multipart upload so
    no billed, invisible parts are left behind (gc aborts any that a crash leaves).
    """

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        key: str,
        *,
        part_size: int,
        max_bytes: int,
        with_checksums: bool,
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key
        self._part_size = part_size
        self._max_bytes = max_bytes
        self._with_checksums = with_checksums
        self._hasher = hashlib.sha256()
        self._size = 0
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[CompletedPartTypeDef] = []
        self._done = False

    @property
    def bytes_written(self) -> int:
        return self._size

    def _require_open(self) -> None:
        if self._done:
            raise RuntimeError("staging writer is already finished or aborted")

    def write(self, chunk: bytes) -> None:
        self._require_open()
        if self._size + len(chunk) > self._max_bytes:
            self.abort()
            raise PayloadTooLarge(
                "file exceeds the maximum upload size", context={"limit": self._max_bytes}
            )
        self._hasher.update(chunk)
        self._size += len(chunk)
        self._buffer += chunk
        while len(self._buffer) >= self._part_size:
            part = bytes(memoryview(self._buffer)[: self._part_size])
            del self._buffer[: self._part_size]
            self._guarded(functools.partial(self._upload_part, part))

    def _guarded(self, fn: Callable[[], None]) -> None:
        """Run S3 calls; on any failure abort the upload and raise the mapped error."""
        try:
            with s3_errors():
                fn()
        except BaseException:
            self.abort()
            raise

    def _upload_part(self, data: bytes) -> None:
        extra: dict[str, Any] = (
            {"ChecksumAlgorithm": CHECKSUM_ALGORITHM} if self._with_checksums else {}
        )
        if self._upload_id is None:
            created = self._client.create_multipart_upload(
                Bucket=self._bucket, Key=self._key, **extra
            )
            self._upload_id = created["UploadId"]
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise PayloadTooLarge(
                "file needs more than 10,000 parts", context={"limit": self._max_bytes}
            )
        resp = self._client.upload_part(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=data,
            **extra,
        )
        part: CompletedPartTypeDef = {"ETag": resp["ETag"], "PartNumber": number}
        if self._with_checksums and "ChecksumCRC32" in resp:
            part["ChecksumCRC32"] = resp["ChecksumCRC32"]
        self._parts.append(part)

    def _complete(self) -> None:
        if self._upload_id is None:
            self._client.put_object(Bucket=self._bucket, Key=self._key, Body=bytes(self._buffer))
            return
        if self._buffer:
            self._upload_part(bytes(self._buffer))
        self._client.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )

    def finish(self) -> StagedObject:
        self._require_open()
        self._guarded(self._complete)
        self._done = True
        self._buffer = bytearray()
        return StagedObject(key=self._key, size=self._size, sha256_hex=self._hasher.hexdigest())

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._buffer = bytearray()
        if self._upload_id is not None:
            # Best effort: the caller is already handling a failure, and gc aborts leftovers.
            with contextlib.suppress(ClientError, BotoCoreError):
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
                )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()  # no-op after finish()


@contextlib.contextmanager
def unchanged(detail: str) -> Iterator[None]:
    """A failed ``If-Match`` / ``CopySourceIfMatch`` (the object was replaced since its HEAD)
    becomes IntegrityFailure instead of an unmapped 412."""
    try:
        yield
    except ClientError as exc:
        if error_code(exc) != "PreconditionFailed":
            raise
        raise IntegrityFailure(detail) from exc


def iter_body(body: StreamingBody, chunk_size: int) -> Iterator[bytes]:
    """Stream a GET body in chunks, mapping botocore errors met mid-stream (closes the body)."""
    with contextlib.closing(body):
        try:
            yield from body.iter_chunks(chunk_size)
        except (ClientError, BotoCoreError) as exc:
            mapped = translate(exc)
            if mapped is exc:
                raise
            raise mapped from exc


def check_bucket(client: S3Client, bucket: str, log: CheckLog) -> None:
    """``HEAD`` the bucket: StorageUnavailable with a ``reason`` unless it answers; a new reason
    is logged once by ``log`` (s3_health), and so is the recovery."""
    try:
        with s3_errors():
            client.head_bucket(Bucket=bucket)
    except (BlobNotFound, ClientError, StorageUnavailable) as exc:
        failure = log.failed(exc)
        raise failure from (exc.__cause__ if failure is exc else exc)
    log.ok()
