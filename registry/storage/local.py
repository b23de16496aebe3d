"""Filesystem artifact store (the embedded / SQLite default).

Layout under ``settings.root`` (prefix is not used locally)::

    blobs/sha256/<hh>/<hex>
    staging/<session-uuid>/<token>                 finished staging objects (one per PUT)
    staging/<session-uuid>/.<token>.<rand>.tmp     in-progress writes
    meta/<name>                                    named metadata objects (audit checkpoints)

Invariants:
- Files are created ``0o600`` with ``O_EXCL`` and directories ``0o700`` (security.md §6 item 6:
  no world-writable temp paths another local user could swap).
- Every publish step is ``fsync(file)`` → ``os.replace`` → ``fsync(dir)``: after a crash a key
  either holds the complete bytes or does not exist. Staging and blobs live on the same
  filesystem so ``os.replace`` is an atomic rename, never a copy.
- Publishing re-hashes: :meth:`LocalArtifactStore.commit_staged` hashes the staged file through
  one open descriptor, checks that the staging path still names that very inode, unchanged,
  and only then renames it onto the blob path, replacing whatever was there (an existing
  blob is never kept on the strength of its size). A reader that opened the old file keeps
  its inode; new readers get the verified one.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from registry.errors import BadRequest, BlobNotFound, IntegrityFailure
from registry.settings import StorageSettings
from registry.storage import keys
from registry.storage.base import (
    DEFAULT_CHUNK_SIZE,
    META_ROOT,
    BlobStat,
    ImportObject,
    IncompleteUpload,
    StagedObject,
    StagingEntry,
    check_object_name,
    put_via_staging,
    verify_chunks,
)
from registry.storage.local_io import (
    DIR_MODE,
    FILE_MODE,
    LocalStagingWriter,
    fsync_dir,
    identity,
    iter_fd,
    unavailable,
)
from registry.validation.source import ByteSource, FileSource


def _mtime(st: os.stat_result) -> datetime:
    return datetime.fromtimestamp(st.st_mtime, tz=UTC)


class LocalArtifactStore:
    """:class:`~registry.storage.base.ArtifactStore` on a local directory."""

    backend = "local"

    def __init__(self, settings: StorageSettings) -> None:
        self._root = Path(settings.root).absolute()
        self._max_upload_bytes = settings.max_upload_bytes
        for sub in ("", "blobs", "staging"):
            (self._root / sub).mkdir(mode=DIR_MODE, parents=True, exist_ok=True)

    @property
    def root(self) -> Path:
        return self._root

    def _path(self, key: str) -> Path:
        return self._root.joinpath(*key.split("/"))

    def _blob_path(self, hex_digest: str) -> Path:
        return self._path(keys.blob_key("", hex_digest))

    def _staging_path(self, key: str, *, include_temp: bool = False) -> Path:
        # Refuse anything that did not come out of keys.staging_key: no arbitrary file access.
        if keys.parse_staging_key("", key, include_temp=include_temp) is None:
            raise ValueError("not a staging key")
        return self._path(key)

    # --- staging ---------------------------------------------------------------------------

    def open_staging(self, session_id: uuid.UUID) -> LocalStagingWriter:
        key = keys.new_staging_key("", session_id)
        return LocalStagingWriter(self._path(key), key, self._max_upload_bytes)

    def open_staged(self, key: str) -> ByteSource:
        try:
            return FileSource(self._staging_path(key))
        except FileNotFoundError as exc:
            raise BlobNotFound("staged object not found") from exc

    def commit_staged(self, staged: StagedObject) -> None:
        src = self._staging_path(staged.key)
        dst = self._blob_path(staged.sha256_hex)
        try:
            fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise BlobNotFound("staged object not found") from exc
        except OSError as exc:
            raise unavailable(exc) from exc
        try:
            hashed = os.fstat(fd)
            if hashed.st_size != staged.size:
                raise IntegrityFailure(
                    "staged object changed size",
                    context={"expected": staged.size, "actual": hashed.st_size},
                )
            # Re-hash the inode that is about to become the blob: the digest recorded at upload
            # time is not trusted to describe the bytes still on disk.
            verify_chunks(staged.sha256_hex, iter_fd(fd), size=staged.size, what="staged object")
            now = os.stat(src, follow_symlinks=False)
            if identity(now) != identity(hashed) or identity(os.fstat(fd)) != identity(hashed):
                raise IntegrityFailure("staged object changed while it was being verified")
            # mtime = now (on our inode, not a path): gc's grace window then covers the
            # caller's pending DB commit even when the file was staged hours ago.
            os.utime(fd)
            dst.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            # Always replace: an object already at ``dst`` may be damaged (same size, other
            # bytes); the verified staged file is what the digest names.
            os.replace(src, dst)
            fsync_dir(dst.parent)
        except OSError as exc:
            raise unavailable(exc) from exc
        finally:
            os.close(fd)

    def discard_staging(self, session_id: uuid.UUID) -> None:
        path = self._path(keys.staging_session_prefix("", session_id).rstrip("/"))
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(path)

    def put_small(self, data: bytes) -> str:
        return put_via_staging(self, data)

    # --- blobs -----------------------------------------------------------------------------

    def blob_exists(self, hex_digest: str) -> bool:
        return self._blob_path(hex_digest).is_file()

    def stat_blob(self, hex_digest: str) -> BlobStat:
        try:
            st = self._blob_path(hex_digest).stat()
        except FileNotFoundError as exc:
            raise BlobNotFound(
                "blob not found", context={"digest": f"sha256:{hex_digest}"}
            ) from exc
        return BlobStat(hex=hex_digest, size=st.st_size, last_modified=_mtime(st))

    def touch_blob(self, hex_digest: str) -> None:
        try:
            os.utime(self._blob_path(hex_digest))
        except FileNotFoundError as exc:
            raise BlobNotFound(
                "blob not found", context={"digest": f"sha256:{hex_digest}"}
            ) from exc

    def open_blob(self, hex_digest: str) -> ByteSource:
        try:
            return FileSource(self._blob_path(hex_digest))
        except FileNotFoundError as exc:
            raise BlobNotFound(
                "blob not found", context={"digest": f"sha256:{hex_digest}"}
            ) from exc

    def iter_blob(self, hex_digest: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        # Open eagerly so BlobNotFound surfaces at the call, not at the first next().
        try:
            handle = self._blob_path(hex_digest).open("rb")
        except FileNotFoundError as exc:
            raise BlobNotFound(
                "blob not found", context={"digest": f"sha256:{hex_digest}"}
            ) from exc
        return _iter_file(handle, chunk_size)

    def iter_blob_range(
        self, hex_digest: str, start: int, stop: int, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[bytes]:
        if chunk_size <= 0 or not 0 <= start <= stop:
            raise ValueError("bad range or chunk size")
        try:
            handle = self._blob_path(hex_digest).open("rb")
        except FileNotFoundError as exc:
            raise BlobNotFound(
                "blob not found", context={"digest": f"sha256:{hex_digest}"}
            ) from exc
        handle.seek(start)
        return _iter_file_range(handle, stop - start, chunk_size)

    def verify_blob(self, hex_digest: str) -> None:
        verify_chunks(hex_digest, self.iter_blob(hex_digest))

    def presign_blob(self, hex_digest: str, ttl_s: int) -> str | None:
        keys.check_hex(hex_digest)
        return None

    def delete_blob(self, hex_digest: str) -> None:
        self._blob_path(hex_digest).unlink(missing_ok=True)

    # --- listing / gc ----------------------------------------------------------------------

    def list_blobs(self) -> Iterator[BlobStat]:
        root = self._path(keys.blobs_root("").rstrip("/"))
        for fan in _scandir(root):
            if not fan.is_dir(follow_symlinks=False):
                continue
            for entry in _scandir(Path(fan.path)):
                hex_digest = keys.parse_blob_key(
                    "", keys.blobs_root("") + f"{fan.name}/{entry.name}"
                )
                if hex_digest is None or not entry.is_file(follow_symlinks=False):
                    continue
                with contextlib.suppress(FileNotFoundError):  # deleted while listing
                    st = entry.stat(follow_symlinks=False)
                    yield BlobStat(hex=hex_digest, size=st.st_size, last_modified=_mtime(st))

    def list_staging(self) -> Iterator[StagingEntry]:
        root_key = keys.staging_root("")
        for session in _scandir(self._path(root_key.rstrip("/"))):
            if not session.is_dir(follow_symlinks=False):
                continue
            for entry in _scandir(Path(session.path)):
                key = f"{root_key}{session.name}/{entry.name}"
                session_id = keys.parse_staging_key("", key, include_temp=True)
                if session_id is None or not entry.is_file(follow_symlinks=False):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    st = entry.stat(follow_symlinks=False)
                    yield StagingEntry(session_id=session_id, key=key, last_modified=_mtime(st))

    def delete_staging_key(self, key: str) -> None:
        path = self._staging_path(key, include_temp=True)
        path.unlink(missing_ok=True)
        # Only gc calls this, on entries past the grace window: the session is long dead, so
        # removing its now-empty directory cannot race a live writer.
        with contextlib.suppress(OSError):
            path.parent.rmdir()

    def list_incomplete_uploads(self) -> Iterator[IncompleteUpload]:
        return iter(())

    def abort_incomplete_upload(self, upload: IncompleteUpload) -> None:
        return None

    # --- imports ---------------------------------------------------------------------------

    def list_import(self, uri: str) -> list[ImportObject]:
        raise BadRequest("importing from s3:// needs the s3 storage backend")

    def open_import_stream(self, bucket: str, key: str) -> Iterator[bytes]:
        raise BadRequest("importing from s3:// needs the s3 storage backend")

    # --- named metadata objects ------------------------------------------------------------

    def _object_path(self, name: str) -> Path:
        return self._path(f"{META_ROOT}/{check_object_name(name)}")

    def put_object(self, name: str, data: bytes) -> None:
        path = self._object_path(name)
        tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
        try:
            for parent in reversed([path.parent, *path.parent.parents]):
                if parent.is_relative_to(self._root) and not parent.is_dir():
                    parent.mkdir(mode=DIR_MODE, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            fsync_dir(path.parent)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise unavailable(exc) from exc

    def get_object(self, name: str) -> bytes:
        try:
            return self._object_path(name).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise BlobNotFound("object not found", context={"name": name}) from exc

    def list_objects(self, prefix: str) -> list[str]:
        check_object_name(prefix, prefix=True)
        meta = self._path(META_ROOT)
        start = meta.joinpath(*prefix.split("/")[:-1])
        found: list[str] = []
        for directory, _dirs, files in os.walk(start):
            for file_name in files:
                name = (Path(directory) / file_name).relative_to(meta).as_posix()
                if not name.startswith(prefix):
                    continue
                with contextlib.suppress(ValueError):  # temp files and foreign names
                    found.append(check_object_name(name))
        return sorted(found)

    # --- health ----------------------------------------------------------------------------

    def check(self) -> None:
        try:
            fd, name = tempfile.mkstemp(dir=self._root / "staging", prefix=".check-")
            os.close(fd)
            os.unlink(name)
        except OSError as exc:
            raise unavailable(exc) from exc


def _scandir(path: Path) -> Iterator[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            yield from it
    except FileNotFoundError:
        return


def _iter_file(handle: io.BufferedReader, chunk_size: int) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(chunk_size):
            yield chunk


def _iter_file_range(handle: io.BufferedReader, length: int, chunk_size: int) -> Iterator[bytes]:
    with handle:
        while length > 0 and (chunk := handle.read(min(chunk_size, length))):
            length -= len(chunk)
            yield chunk
