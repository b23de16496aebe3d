"""Random-access byte sources: what validators read from.

Validation reads only what it needs (the 8-byte length prefix and the JSON header of a
safetensors file, a small config), so it works the same on a local file, a staged upload on
disk, or an object in S3 fetched with range GETs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable


@runtime_checkable
class ByteSource(Protocol):
    """A sized, random-access, read-only byte sequence."""

    @property
    def size(self) -> int: ...

    def read_at(self, offset: int, length: int) -> bytes:
        """Return up to ``length`` bytes starting at ``offset`` (fewer only at the end)."""
        ...


class BytesSource:
    """An in-memory source (small files, tests)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    @property
    def size(self) -> int:
        return len(self._data)

    def read_at(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("negative offset or length")
        return self._data[offset : offset + length]


class FileSource:
    """A local file, read with ``os.pread`` (no shared file position, thread-safe)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._size = self.path.stat().st_size

    @property
    def size(self) -> int:
        return self._size

    def read_at(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("negative offset or length")
        fd = os.open(self.path, os.O_RDONLY)
        try:
            chunks: list[bytes] = []
            remaining = length
            pos = offset
            while remaining > 0:
                chunk = os.pread(fd, min(remaining, 1 << 24), pos)
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
                pos += len(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)
