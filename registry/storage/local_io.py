"""Local-filesystem building blocks: the staging writer, fsync and error helpers.

Invariants (see :mod:`registry.storage.local`): files ``0o600`` created with ``O_EXCL``,
directories ``0o700``; a finished staging file is ``fsync``'ed and renamed into place under a
name no other writer is given, so it is never written again.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

from registry.errors import PayloadTooLarge, StorageUnavailable
from registry.storage.base import DEFAULT_CHUNK_SIZE, StagedObject

DIR_MODE = 0o700
FILE_MODE = 0o600


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unavailable(exc: OSError) -> StorageUnavailable:
    return StorageUnavailable(
        "local artifact store failed", context={"errno": errno.errorcode.get(exc.errno or 0)}
    )


class LocalStagingWriter:
    """Writes one staging file; hashes in flight; publishes atomically on :meth:`finish`."""

    def __init__(self, final: Path, key: str, max_bytes: int) -> None:
        session_dir = final.parent
        self._final = final
        self._tmp = session_dir / f".{final.name}.{secrets.token_hex(8)}.tmp"
        self._key = key
        self._max_bytes = max_bytes
        self._hasher = hashlib.sha256()
        self._size = 0
        self._done = False
        try:
            session_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            self._fd: int | None = os.open(
                self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE
            )
        except OSError as exc:
            raise unavailable(exc) from exc

    @property
    def bytes_written(self) -> int:
        return self._size

    def _require_open(self) -> int:
        if self._done or self._fd is None:
            raise RuntimeError("staging writer is already finished or aborted")
        return self._fd

    def write(self, chunk: bytes) -> None:
        fd = self._require_open()
        if self._size + len(chunk) > self._max_bytes:
            self.abort()
            raise PayloadTooLarge(
                "file exceeds the maximum upload size", context={"limit": self._max_bytes}
            )
        self._hasher.update(chunk)
        view = memoryview(chunk)
        try:
            while view:  # os.write may write less than asked (signals, pipes, quotas)
                written = os.write(fd, view)
                view = view[written:]
        except OSError as exc:
            self.abort()
            raise unavailable(exc) from exc
        self._size += len(chunk)

    def finish(self) -> StagedObject:
        fd = self._require_open()
        try:
            os.fsync(fd)
            os.close(fd)
            self._fd = None
            os.replace(self._tmp, self._final)
            fsync_dir(self._final.parent)
        except OSError as exc:
            self.abort()
            raise unavailable(exc) from exc
        self._done = True
        return StagedObject(key=self._key, size=self._size, sha256_hex=self._hasher.hexdigest())

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        with contextlib.suppress(OSError):
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()  # no-op after finish()


def identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def iter_fd(fd: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
    """Read an open descriptor from its current offset to the end, one chunk at a time."""
    while chunk := os.read(fd, chunk_size):
        yield chunk
