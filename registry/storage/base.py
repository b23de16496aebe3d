"""The artifact store port: content-addressed blobs plus per-upload staging.

Invariants every implementation keeps:
- Blob keys come only from validated sha256 hex digests (``keys.py``); nothing a client
  sends becomes a key.
- The digest of a blob is a sha256 computed by us: in flight by :class:`StagingWriter`
  while the bytes streamed through it, and **again** by :meth:`commit_staged` over the staged
  bytes it publishes. S3 ETags and checksums are transport protection only.
- A blob key only ever receives bytes that were just re-hashed to that key's digest; the
  existence or size of an object already at the key is never trusted (a damaged blob of the
  right size would otherwise be kept forever and served to every later push of the genuine
  content, across namespaces). Publishing is atomic (local ``os.replace``; S3 copy of the
  verified object version, which readers see whole or not at all).
- Staging keys are unique per writer (:func:`keys.new_staging_key`) and never rewritten.
- Blobs are immutable in content: a re-publish writes the same bytes. Deletion is idempotent
  and only ever done by gc after the database no longer references the digest (STYLE.md §3.4).
- Memory is constant in the size of the data: writers buffer at most one S3 part, readers
  stream in fixed chunks.
- Small named metadata objects (audit checkpoints) live under ``<prefix>/meta/<name>``, outside
  the blob and staging key spaces, so gc (which lists only blobs and staging) never sees them.
  Their names are internal, never client input, and are validated by :func:`check_object_name`.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from registry.errors import IntegrityFailure
from registry.storage.keys import format_digest
from registry.validation.source import ByteSource

DEFAULT_CHUNK_SIZE = 1024 * 1024
META_ROOT = "meta"
MAX_OBJECT_NAME = 512

_OBJECT_NAME_RE = re.compile(r"[a-z0-9][a-z0-9/_.-]*")
_OBJECT_SEGMENT_RE = re.compile(r"[a-z0-9][a-z0-9_.-]*")


def check_object_name(name: str, *, prefix: bool = False) -> str:
    """Validate a metadata object name (or, with ``prefix``, a listing prefix) and return it.

    ``^[a-z0-9][a-z0-9/_.-]*$``, at most 512 characters, no ``..``, no empty segment and no
    segment starting with ``.`` (the local backend's temp files). A prefix may also be empty
    or end with ``/``.
    """
    if not isinstance(name, str):
        raise ValueError("object names are strings")
    if prefix and name == "":
        return name
    text = name[:-1] if prefix and name.endswith("/") else name
    ok = (
        len(name) <= MAX_OBJECT_NAME
        and _OBJECT_NAME_RE.fullmatch(text) is not None
        and ".." not in text
        and all(_OBJECT_SEGMENT_RE.fullmatch(segment) for segment in text.split("/"))
    )
    if not ok:
        raise ValueError(f"invalid object name {name!r}")
    return name


@dataclass(frozen=True, slots=True)
class StagedObject:
    """A finished staging object: where it is, how big, and the sha256 we computed."""

    key: str
    size: int
    sha256_hex: str

    @property
    def digest(self) -> str:
        return format_digest(self.sha256_hex)


@dataclass(frozen=True, slots=True)
class BlobStat:
    hex: str
    size: int
    last_modified: datetime  # timezone-aware UTC


@dataclass(frozen=True, slots=True)
class StagingEntry:
    session_id: uuid.UUID
    key: str
    last_modified: datetime  # timezone-aware UTC


@dataclass(frozen=True, slots=True)
class IncompleteUpload:
    """An S3 multipart upload that was never completed or aborted (billed until aborted)."""

    key: str
    upload_id: str
    initiated: datetime  # timezone-aware UTC


@dataclass(frozen=True, slots=True)
class ImportObject:
    """A direct child object of an allow-listed import prefix."""

    name: str  # file name relative to the prefix (no "/")
    key: str
    size: int
    bucket: str


class StagingWriter(Protocol):
    """Streams one file into staging, hashing it on the way.

    Use as a context manager: leaving the block without :meth:`finish` aborts.
    """

    @property
    def bytes_written(self) -> int: ...

    def write(self, chunk: bytes) -> None:
        """Append bytes. Raises PayloadTooLarge (after aborting) past ``max_upload_bytes``."""
        ...

    def finish(self) -> StagedObject:
        """Make the staged object durable and return its key, size and sha256."""
        ...

    def abort(self) -> None:
        """Drop everything written so far. Idempotent; a no-op after :meth:`finish`."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class ArtifactStore(Protocol):
    """Content-addressed artifact bytes (local directory or S3 bucket)."""

    backend: str

    # --- staging ---------------------------------------------------------------------------

    def open_staging(self, session_id: uuid.UUID) -> StagingWriter:
        """A writer on a fresh staging key of ``session_id`` that no other writer shares."""
        ...

    def open_staged(self, key: str) -> ByteSource:
        """Random-access reader over a finished staging object (for validation)."""
        ...

    def commit_staged(self, staged: StagedObject) -> None:
        """Re-hash a staged object and publish exactly those bytes under its blob key.

        The staged bytes are read back and hashed; unless they have ``staged.size`` and hash
        to ``staged.sha256_hex``, nothing is published and IntegrityFailure is raised. The
        blob key is then written with the verified bytes whether or not an object is already
        there: an existing blob is never trusted by its presence or size, so a damaged one is
        replaced by the next honest push. The published blob's modification time is "now",
        so gc's grace window protects it until the caller's database transaction references
        it. The staging object is gone afterwards. BlobNotFound: the staged object is gone.
        """
        ...

    def discard_staging(self, session_id: uuid.UUID) -> None:
        """Delete every staging object (and S3 multipart upload) of a session. Idempotent."""
        ...

    def put_small(self, data: bytes) -> str:
        """Store a small blob (e.g. a manifest) atomically via staging; return its hex."""
        ...

    # --- blobs -----------------------------------------------------------------------------

    def blob_exists(self, hex_digest: str) -> bool:
        """Whether an object is stored at the digest's key (presence only, not integrity:
        publishing never relies on it; :meth:`verify_blob` checks the bytes)."""
        ...

    def stat_blob(self, hex_digest: str) -> BlobStat:
        """Raises BlobNotFound."""
        ...

    def touch_blob(self, hex_digest: str) -> None:
        """Refresh a blob's modification time (reusing an existing blob without a commit)."""
        ...

    def open_blob(self, hex_digest: str) -> ByteSource: ...

    def iter_blob(self, hex_digest: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        """Stream a blob in chunks of at most ``chunk_size`` bytes. Raises BlobNotFound."""
        ...

    def iter_blob_range(
        self, hex_digest: str, start: int, stop: int, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[bytes]:
        """Stream bytes ``[start, stop)`` of a blob (``0 <= start < stop <= size``, checked by the
        caller against :meth:`stat_blob`): an HTTP ``Range`` answer. Raises BlobNotFound."""
        ...

    def verify_blob(self, hex_digest: str) -> None:
        """Re-hash the stored bytes; IntegrityFailure if they no longer match the digest."""
        ...

    def presign_blob(self, hex_digest: str, ttl_s: int) -> str | None:
        """A time-limited GET URL, or None when the backend cannot presign (local)."""
        ...

    def delete_blob(self, hex_digest: str) -> None:
        """Delete a blob; a missing blob is success. Only gc calls this."""
        ...

    # --- listing / gc ----------------------------------------------------------------------

    def list_blobs(self) -> Iterator[BlobStat]: ...

    def list_staging(self) -> Iterator[StagingEntry]: ...

    def delete_staging_key(self, key: str) -> None:
        """Delete one staging object (key from :meth:`list_staging`); missing is success."""
        ...

    def list_incomplete_uploads(self) -> Iterator[IncompleteUpload]:
        """S3 multipart uploads never completed; always empty for the local backend."""
        ...

    def abort_incomplete_upload(self, upload: IncompleteUpload) -> None:
        """Abort one incomplete upload; already gone is success."""
        ...

    # --- imports (S3 only) -----------------------------------------------------------------

    def list_import(self, uri: str) -> list[ImportObject]:
        """Direct children of an allow-listed ``s3://bucket/prefix/`` (UriNotAllowed/InvalidUri)."""
        ...

    def open_import_stream(self, bucket: str, key: str) -> Iterator[bytes]:
        """Stream an import object; the location is re-checked against the allow-list."""
        ...

    # --- named metadata objects (audit checkpoints) ----------------------------------------

    def put_object(self, name: str, data: bytes) -> None:
        """Write (or replace) the small object ``name`` atomically (ValueError: bad name)."""
        ...

    def get_object(self, name: str) -> bytes:
        """Read the object ``name``. Raises BlobNotFound when it does not exist."""
        ...

    def list_objects(self, prefix: str) -> list[str]:
        """Names of the objects whose name starts with ``prefix``, sorted."""
        ...

    # --- health ----------------------------------------------------------------------------

    def check(self) -> None:
        """Readiness probe: raises StorageUnavailable when the store cannot be used."""
        ...


def verify_chunks(
    hex_digest: str,
    chunks: Iterator[bytes],
    *,
    size: int | None = None,
    what: str = "stored blob",
) -> None:
    """Hash a chunk stream and raise IntegrityFailure unless it matches ``hex_digest`` (and,
    when given, ``size``). Memory is one chunk."""
    hasher = hashlib.sha256()
    seen = 0
    for chunk in chunks:
        hasher.update(chunk)
        seen += len(chunk)
    actual = hasher.hexdigest()
    if actual != hex_digest or (size is not None and seen != size):
        raise IntegrityFailure(
            f"{what} does not match its digest",
            context={
                "digest": format_digest(hex_digest),
                "actual": format_digest(actual),
                "size": seen,
            },
        )


def put_via_staging(store: ArtifactStore, data: bytes) -> str:
    """Write ``data`` through a throw-away staging session and commit it; return its hex.

    Going through staging (rather than writing the blob key directly) keeps the one
    invariant that matters: a blob key only ever holds bytes whose sha256 we computed.
    """
    session_id = uuid.uuid4()
    try:
        with store.open_staging(session_id) as writer:
            writer.write(data)
            staged = writer.finish()
        store.commit_staged(staged)
    except BaseException:
        # Best effort: the original error matters more, and gc collects what is left.
        with contextlib.suppress(Exception):
            store.discard_staging(session_id)
        raise
    return staged.sha256_hex
