"""S3 (and S3-compatible: MinIO, Ceph, R2, moto) artifact store.

Invariants (beyond those of :mod:`registry.storage.base`):
- One bucket, keys under ``settings.prefix`` laid out by :mod:`registry.storage.keys`.
- Commit re-hashes, then copies: the staged object is read back (``GET`` pinned with
  ``If-Match`` on the ETag seen at ``HEAD``) and hashed; only if it hashes to the recorded
  digest is it server-side copied onto the blob key with boto3's managed ``copy`` (multipart
  copy above one part, so blobs > 5 GB work) under ``CopySourceIfMatch`` on that same ETag, so
  the bytes copied are the object version just hashed. The blob key is written on every commit,
  never skipped because an object of the right size is already there (a damaged blob would
  otherwise be kept and served forever); S3 replaces an object atomically for readers. The
  size is re-checked after the copy and the staging object deleted.
- ETags and S3 checksums are never used as identity (a multipart ETag is not an MD5 of the
  object; security.md §5.2).
- Only keys that parse as our own blob/staging keys are listed, deleted or aborted, so a
  shared bucket's foreign objects are never touched by gc.
- Named metadata objects (audit checkpoints) live under ``<prefix>/meta/``, never listed by gc;
  it should be write-once for the application (Object Lock, a policy denying DeleteObject).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from registry.errors import BadRequest, BlobNotFound, IntegrityFailure
from registry.settings import StorageSettings
from registry.storage import base, keys
from registry.storage.imports import (
    check_import_object,
    is_safe_name,
    parse_import_uri,
    validate_allowlist,
)
from registry.storage.s3_direct import S3DirectUploads
from registry.storage.s3_health import CheckLog
from registry.storage.s3_io import (
    S3ByteSource,
    S3StagingWriter,
    build_client,
    check_bucket,
    error_code,
    iter_body,
    s3_errors,
    unchanged,
)
from registry.validation.source import ByteSource

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

MAX_IMPORT_OBJECTS = 1000
_DELETE_BATCH = 1000  # DeleteObjects limit


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class S3ArtifactStore:
    """:class:`~registry.storage.base.ArtifactStore` on an S3 bucket."""

    backend = "s3"

    def __init__(self, settings: StorageSettings, *, client: S3Client | None = None) -> None:
        if not settings.bucket:
            raise ValueError("storage.bucket is required for the s3 backend")
        validate_allowlist(settings.import_allowlist)
        self._bucket = settings.bucket
        self._prefix = keys.normalise_prefix(settings.prefix)
        self._part_size = settings.multipart_chunk_bytes
        self._max_upload_bytes = settings.max_upload_bytes
        self._allowlist = tuple(settings.import_allowlist)
        self._with_checksums = settings.checksum_mode == "when_supported"
        self._client: S3Client = client if client is not None else build_client(settings)
        self._check_log = CheckLog(endpoint=settings.endpoint_url, bucket=settings.bucket)
        self._direct = S3DirectUploads(self._client, self._bucket, self._prefix)
        self._transfer = TransferConfig(
            multipart_threshold=settings.multipart_chunk_bytes,
            multipart_chunksize=settings.multipart_chunk_bytes,
        )

    @property
    def direct(self) -> S3DirectUploads:
        """Direct (presigned multipart) uploads into this bucket's staging."""
        return self._direct

    @property
    def client(self) -> S3Client:
        return self._client

    @property
    def bucket(self) -> str:
        return self._bucket

    def blob_key(self, hex_digest: str) -> str:
        return keys.blob_key(self._prefix, hex_digest)

    def _check_staging_key(self, key: str) -> str:
        if keys.parse_staging_key(self._prefix, key) is None:
            raise ValueError("not a staging key")
        return key

    def _head_size(self, key: str, what: str) -> int | None:
        try:
            with s3_errors(what):
                return int(self._client.head_object(Bucket=self._bucket, Key=key)["ContentLength"])
        except BlobNotFound:
            return None

    def _copy(
        self, src: str, dst: str, *, refresh: bool = False, if_match: str | None = None
    ) -> None:
        extra: dict[str, Any] = {}
        if if_match is not None:
            extra["CopySourceIfMatch"] = if_match
        if refresh:
            # S3 refuses a copy onto itself unless something changes; replacing the metadata
            # is that change, and it gives the object a new LastModified.
            extra["MetadataDirective"] = "REPLACE"
            extra["Metadata"] = {"registry-touched": datetime.now(UTC).isoformat()}
        with s3_errors():
            self._client.copy(
                CopySource={"Bucket": self._bucket, "Key": src},
                Bucket=self._bucket,
                Key=dst,
                ExtraArgs=extra or None,
                Config=self._transfer,
            )

    def _delete_keys(self, object_keys: list[str]) -> None:
        for start in range(0, len(object_keys), _DELETE_BATCH):
            batch: list[ObjectIdentifierTypeDef] = [
                {"Key": k} for k in object_keys[start : start + _DELETE_BATCH]
            ]
            with s3_errors():
                self._client.delete_objects(
                    Bucket=self._bucket, Delete={"Objects": batch, "Quiet": True}
                )

    # --- staging ---------------------------------------------------------------------------

    def open_staging(self, session_id: uuid.UUID) -> S3StagingWriter:
        return S3StagingWriter(
            self._client,
            self._bucket,
            keys.new_staging_key(self._prefix, session_id),
            part_size=self._part_size,
            max_bytes=self._max_upload_bytes,
            with_checksums=self._with_checksums,
        )

    def open_staged(self, key: str) -> ByteSource:
        return S3ByteSource(
            self._client, self._bucket, self._check_staging_key(key), what="staged object"
        )

    def commit_staged(self, staged: base.StagedObject) -> None:
        src = self._check_staging_key(staged.key)
        dst = self.blob_key(staged.sha256_hex)
        with s3_errors("staged object"):
            head = self._client.head_object(Bucket=self._bucket, Key=src)
        src_size, etag = int(head["ContentLength"]), str(head["ETag"])
        if src_size != staged.size:
            raise IntegrityFailure(
                "staged object changed size", context={"expected": staged.size, "actual": src_size}
            )
        with unchanged("staged object changed while it was being verified"):
            # Re-hash what is in the bucket: the digest recorded at upload time is not trusted
            # to describe the object that is about to be published.
            with s3_errors("staged object"):
                body = self._client.get_object(Bucket=self._bucket, Key=src, IfMatch=etag)["Body"]
            base.verify_chunks(
                staged.sha256_hex,
                iter_body(body, base.DEFAULT_CHUNK_SIZE),
                size=staged.size,
                what="staged object",
            )
            # Always (re)write the blob key from the verified version, even when an object is
            # there already: it may be damaged. The copy also gives the blob a fresh
            # LastModified, so gc's grace window covers the caller's pending DB commit.
            self._copy(src, dst, if_match=etag)
        copied = self._head_size(dst, "blob")
        if copied != staged.size:
            raise IntegrityFailure(
                "blob has the wrong size after copy",
                context={"expected": staged.size, "actual": copied},
            )
        with s3_errors():
            self._client.delete_object(Bucket=self._bucket, Key=src)

    def discard_staging(self, session_id: uuid.UUID) -> None:
        prefix = keys.staging_session_prefix(self._prefix, session_id)
        with s3_errors():
            paginator = self._client.get_paginator("list_objects_v2")
            found = [
                obj["Key"]
                for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix)
                for obj in page.get("Contents", [])
            ]
        self._delete_keys(found)
        for upload in self._iter_uploads(prefix):
            self.abort_incomplete_upload(upload)

    def put_small(self, data: bytes) -> str:
        return base.put_via_staging(self, data)

    # --- blobs -----------------------------------------------------------------------------

    def blob_exists(self, hex_digest: str) -> bool:
        return self._head_size(self.blob_key(hex_digest), "blob") is not None

    def stat_blob(self, hex_digest: str) -> base.BlobStat:
        with s3_errors("blob"):
            head = self._client.head_object(Bucket=self._bucket, Key=self.blob_key(hex_digest))
        return base.BlobStat(
            hex=hex_digest,
            size=int(head["ContentLength"]),
            last_modified=_utc(head["LastModified"]),
        )

    def touch_blob(self, hex_digest: str) -> None:
        key = self.blob_key(hex_digest)
        if self._head_size(key, "blob") is None:
            raise BlobNotFound("blob not found", context={"digest": keys.format_digest(hex_digest)})
        self._copy(key, key, refresh=True)

    def open_blob(self, hex_digest: str) -> ByteSource:
        return S3ByteSource(self._client, self._bucket, self.blob_key(hex_digest), what="blob")

    def iter_blob(
        self, hex_digest: str, chunk_size: int = base.DEFAULT_CHUNK_SIZE
    ) -> Iterator[bytes]:
        return self._stream(self._bucket, self.blob_key(hex_digest), chunk_size, "blob")

    def iter_blob_range(
        self, hex_digest: str, start: int, stop: int, chunk_size: int = base.DEFAULT_CHUNK_SIZE
    ) -> Iterator[bytes]:
        if not 0 <= start < stop:
            raise ValueError("bad range")
        key = self.blob_key(hex_digest)
        return self._stream(self._bucket, key, chunk_size, "blob", f"bytes={start}-{stop - 1}")

    def _stream(
        self, bucket: str, key: str, chunk_size: int, what: str, byte_range: str | None = None
    ) -> Iterator[bytes]:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        # GET eagerly so BlobNotFound surfaces at the call, not at the first next().
        with s3_errors(what):
            if byte_range is None:
                body = self._client.get_object(Bucket=bucket, Key=key)["Body"]
            else:
                body = self._client.get_object(Bucket=bucket, Key=key, Range=byte_range)["Body"]
        return iter_body(body, chunk_size)

    def verify_blob(self, hex_digest: str) -> None:
        base.verify_chunks(hex_digest, self.iter_blob(hex_digest))

    def presign_blob(self, hex_digest: str, ttl_s: int) -> str | None:
        key = self.blob_key(hex_digest)
        # Presigning is offline; HEAD first so a missing blob is a 404 now, not a broken URL.
        if self._head_size(key, "blob") is None:
            raise BlobNotFound("blob not found", context={"digest": keys.format_digest(hex_digest)})
        with s3_errors():
            return self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=ttl_s
            )

    def delete_blob(self, hex_digest: str) -> None:
        # DeleteObject of a missing key succeeds on S3, which is exactly gc's need.
        with s3_errors():
            self._client.delete_object(Bucket=self._bucket, Key=self.blob_key(hex_digest))

    # --- listing / gc ----------------------------------------------------------------------

    def list_blobs(self) -> Iterator[base.BlobStat]:
        paginator = self._client.get_paginator("list_objects_v2")
        with s3_errors():
            for page in paginator.paginate(
                Bucket=self._bucket, Prefix=keys.blobs_root(self._prefix)
            ):
                for obj in page.get("Contents", []):
                    hex_digest = keys.parse_blob_key(self._prefix, obj["Key"])
                    if hex_digest is not None:
                        yield base.BlobStat(hex_digest, int(obj["Size"]), _utc(obj["LastModified"]))

    def list_staging(self) -> Iterator[base.StagingEntry]:
        paginator = self._client.get_paginator("list_objects_v2")
        with s3_errors():
            for page in paginator.paginate(
                Bucket=self._bucket, Prefix=keys.staging_root(self._prefix)
            ):
                for obj in page.get("Contents", []):
                    session_id = keys.parse_staging_key(self._prefix, obj["Key"])
                    if session_id is not None:
                        yield base.StagingEntry(session_id, obj["Key"], _utc(obj["LastModified"]))

    def delete_staging_key(self, key: str) -> None:
        with s3_errors():
            self._client.delete_object(Bucket=self._bucket, Key=self._check_staging_key(key))

    def _iter_uploads(self, prefix: str) -> Iterator[base.IncompleteUpload]:
        paginator = self._client.get_paginator("list_multipart_uploads")
        with s3_errors():
            for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
                for up in page.get("Uploads", []):
                    key = up.get("Key", "")
                    ours = (
                        keys.parse_staging_key(self._prefix, key) is not None
                        or keys.parse_blob_key(self._prefix, key) is not None
                    )
                    if ours and "UploadId" in up and "Initiated" in up:
                        yield base.IncompleteUpload(key, up["UploadId"], _utc(up["Initiated"]))

    def list_incomplete_uploads(self) -> Iterator[base.IncompleteUpload]:
        # Staging writers and managed copies onto blob keys both create multipart uploads.
        yield from self._iter_uploads(keys.staging_root(self._prefix))
        yield from self._iter_uploads(keys.blobs_root(self._prefix))

    def abort_incomplete_upload(self, upload: base.IncompleteUpload) -> None:
        with s3_errors():
            try:
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=upload.key, UploadId=upload.upload_id
                )
            except ClientError as exc:
                if error_code(exc) not in {"NoSuchUpload", "404", "NotFound"}:
                    raise

    # --- imports ---------------------------------------------------------------------------

    def list_import(self, uri: str) -> list[base.ImportObject]:
        bucket, prefix = parse_import_uri(uri, self._allowlist)
        found: list[base.ImportObject] = []
        paginator = self._client.get_paginator("list_objects_v2")
        # Delimiter "/" returns direct children only; deeper keys come back as CommonPrefixes,
        # which are ignored.
        with s3_errors("import location"):
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
                for obj in page.get("Contents", []):
                    name = obj["Key"][len(prefix) :]
                    # "" is a folder marker; unsafe names could not be re-validated at read
                    # time, so they are never offered.
                    if not is_safe_name(name):
                        continue
                    if len(found) >= MAX_IMPORT_OBJECTS:
                        raise BadRequest(
                            "too many objects under the import prefix",
                            context={"limit": MAX_IMPORT_OBJECTS},
                        )
                    found.append(base.ImportObject(name, obj["Key"], int(obj["Size"]), bucket))
        return sorted(found, key=lambda o: o.name)

    def open_import_stream(self, bucket: str, key: str) -> Iterator[bytes]:
        check_import_object(bucket, key, self._allowlist)
        return self._stream(bucket, key, base.DEFAULT_CHUNK_SIZE, "import object")

    # --- named metadata objects ------------------------------------------------------------

    def _meta_root(self) -> str:
        return f"{self._prefix}/{base.META_ROOT}/" if self._prefix else f"{base.META_ROOT}/"

    def put_object(self, name: str, data: bytes) -> None:
        key = self._meta_root() + base.check_object_name(name)
        with s3_errors():
            self._client.put_object(Bucket=self._bucket, Key=key, Body=data)

    def get_object(self, name: str) -> bytes:
        key = self._meta_root() + base.check_object_name(name)
        with s3_errors("object"):
            body = self._client.get_object(Bucket=self._bucket, Key=key)["Body"]
            with contextlib.closing(body):
                return body.read()

    def list_objects(self, prefix: str) -> list[str]:
        root = self._meta_root()
        found: list[str] = []
        paginator = self._client.get_paginator("list_objects_v2")
        with s3_errors():
            for page in paginator.paginate(
                Bucket=self._bucket, Prefix=root + base.check_object_name(prefix, prefix=True)
            ):
                for obj in page.get("Contents", []):
                    with contextlib.suppress(ValueError):  # foreign keys under meta/
                        found.append(base.check_object_name(obj["Key"][len(root) :]))
        return sorted(found)

    # --- health ----------------------------------------------------------------------------

    def check(self) -> None:
        """StorageUnavailable with a ``reason`` unless the bucket answers (s3_health)."""
        check_bucket(self._client, self._bucket, self._check_log)
