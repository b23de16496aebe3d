"""Direct uploads to S3: the client sends a file's bytes to the bucket itself, through presigned
multipart part URLs, and the server never proxies them.

Invariants:
- The server draws the key (``keys.new_direct_staging_key``, a ``d<token>`` staging key of the
  caller's session) and creates the multipart upload; the client only ever gets presigned
  ``UploadPart`` URLs, each signed for that key, that upload id and one part number, valid for
  ``direct_url_ttl_s``. It cannot pick a key, start an upload or write anywhere else.
- What the client declared (file name, size, sha256) is kept as object metadata set by the
  server at ``CreateMultipartUpload``; presigned part uploads cannot change it, so at completion
  it is read back from the store instead of being trusted from the request.
- The bytes are unverified until the server has hashed them (``commit_staged`` re-hashes
  every staged object before publishing it under its digest): a ``d`` key is what tells
  registration that the version must stay ``verifying`` until then.
- Abandoned uploads are aborted with the session's staging (``discard_staging`` aborts every
  multipart upload under the session prefix) and by ``storage gc``'s incomplete-upload sweep.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from registry.errors import InvalidPartList
from registry.storage import keys
from registry.storage.s3_io import MAX_PARTS, error_code, s3_errors

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

#: Object metadata the server sets when it starts a direct upload (x-amz-meta-*).
META_NAME = "registry-name"
META_SHA256 = "registry-sha256"
META_SIZE = "registry-size"
META_PART = "registry-part-size"

# An S3 ETag as servers return it: quoted hex (a part's MD5), at most a few dozen characters.
_ETAG_RE = re.compile(r'"?[0-9A-Za-z-]{1,64}"?')
_UPLOAD_ID_RE = re.compile(r"[0-9A-Za-z._~+/=-]{1,1024}")
# What the store answers to a part list it refuses.
_BAD_PART_CODES = frozenset(
    {"InvalidPart", "InvalidPartOrder", "EntityTooSmall", "MalformedXML", "InvalidRequest"}
)


@dataclass(frozen=True, slots=True)
class StartedDirect:
    """A direct upload the server started: its key, S3 upload id and one URL per part."""

    key: str
    upload_id: str
    part_size: int
    urls: list[str]  # urls[i] uploads part i + 1


@dataclass(frozen=True, slots=True)
class CompletedDirect:
    """A completed direct upload, as the store (not the client) describes it."""

    key: str
    name: str
    size: int
    claimed_hex: str


def part_count(size: int, part_size: int) -> int:
    """Parts a file of ``size`` bytes is cut into (one for an empty file)."""
    return max(1, -(-size // part_size))


class S3DirectUploads:
    """Start, complete and abort direct uploads on one bucket (``S3ArtifactStore.direct``)."""

    def __init__(self, client: S3Client, bucket: str, prefix: str) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix

    def key_for(self, session_id: uuid.UUID, token: str) -> str:
        """The staging key of direct upload ``token`` (``d`` + 32 hex) of a session, or
        ``invalid_part_list`` for anything else (the token is client input)."""
        if re.fullmatch(r"d[0-9a-f]{32}", token) is None:
            raise InvalidPartList("not a direct upload id", context={"reason": "bad_id"})
        return keys.staging_session_prefix(self._prefix, session_id) + token

    def start(
        self,
        session_id: uuid.UUID,
        *,
        name: str,
        size: int,
        sha256_hex: str,
        part_size: int,
        url_ttl_s: int,
    ) -> StartedDirect:
        """Create the multipart upload on a fresh ``d`` key and presign every part."""
        count = part_count(size, part_size)
        if count > MAX_PARTS:
            raise InvalidPartList(
                "file needs more than 10,000 parts", context={"reason": "too_many_parts"}
            )
        key = keys.new_direct_staging_key(self._prefix, session_id)
        with s3_errors():
            created = self._client.create_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                ContentType="application/octet-stream",
                Metadata={
                    META_NAME: name,
                    META_SHA256: sha256_hex,
                    META_SIZE: str(size),
                    META_PART: str(part_size),
                },
            )
            upload_id = created["UploadId"]
            urls = [
                self._client.generate_presigned_url(
                    "upload_part",
                    Params={
                        "Bucket": self._bucket,
                        "Key": key,
                        "UploadId": upload_id,
                        "PartNumber": number,
                    },
                    ExpiresIn=url_ttl_s,
                )
                for number in range(1, count + 1)
            ]
        return StartedDirect(key=key, upload_id=upload_id, part_size=part_size, urls=urls)

    def complete(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> CompletedDirect:
        """``CompleteMultipartUpload`` with the client's part list, then read back what the
        server declared at start (name, size, sha256, part size) from the object's metadata;
        the object must have exactly the declared size and part count.

        Errors: ``invalid_part_list`` (malformed, no such upload at that key, refused by the
        store, wrong size or part count: a completed object is then deleted).
        """
        numbers = [n for n, _ in parts]
        if not parts or numbers != list(range(1, len(parts) + 1)) or len(parts) > MAX_PARTS:
            raise InvalidPartList(
                "parts must be numbered 1..N in order, one per presigned URL",
                context={"reason": "part_numbers"},
            )
        if not all(_ETAG_RE.fullmatch(etag) for _, etag in parts):
            raise InvalidPartList("malformed part ETag", context={"reason": "etag"})
        if not _UPLOAD_ID_RE.fullmatch(upload_id) or not self._exists(key, upload_id):
            raise InvalidPartList("no such direct upload", context={"reason": "no_such_upload"})
        completed: list[CompletedPartTypeDef] = [{"PartNumber": n, "ETag": e} for n, e in parts]
        try:
            with s3_errors("direct upload"):
                self._client.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": completed},
                )
        except ClientError as exc:
            if error_code(exc) not in _BAD_PART_CODES:
                raise
            raise InvalidPartList(
                "the store refused the part list",
                context={"reason": "refused", "s3_error": error_code(exc)},
            ) from exc
        with s3_errors("direct upload"):
            head = self._client.head_object(Bucket=self._bucket, Key=key)
        meta = {k.lower(): v for k, v in head.get("Metadata", {}).items()}
        try:
            name, claimed = meta[META_NAME], keys.check_hex(meta[META_SHA256])
            size, part_size = int(meta[META_SIZE]), int(meta[META_PART])
        except (KeyError, ValueError) as exc:  # not one of ours: never publish it
            self._delete(key)
            raise InvalidPartList("not a direct upload", context={"reason": "metadata"}) from exc
        actual = int(head["ContentLength"])
        if actual != size or len(parts) != part_count(size, part_size):
            self._delete(key)
            raise InvalidPartList(
                "the uploaded parts do not add up to the declared file",
                context={
                    "reason": "size",
                    "expected": size,
                    "actual": actual,
                    "expected_parts": part_count(size, part_size),
                },
            )
        return CompletedDirect(key=key, name=name, size=size, claimed_hex=claimed)

    def _exists(self, key: str, upload_id: str) -> bool:
        # ListMultipartUploads rather than ListParts: some servers answer an unknown upload id
        # with a 500 there (moto), which would read as an outage instead of a bad request.
        with s3_errors("direct upload"):
            paginator = self._client.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=self._bucket, Prefix=key):
                for up in page.get("Uploads", []):
                    if up.get("Key") == key and up.get("UploadId") == upload_id:
                        return True
        return False

    def _delete(self, key: str) -> None:
        with s3_errors():
            self._client.delete_object(Bucket=self._bucket, Key=key)

    def abort(self, key: str, upload_id: str) -> None:
        """Abort a direct upload (best effort: gc aborts what is left)."""
        with contextlib.suppress(ClientError, BotoCoreError):
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)
