"""The files of a resumable download (``pull``): a file is written under a temporary name in the
target directory, ``.NAME.<digest12>.part``, and renamed to ``NAME`` only once its sha256 and
size are the listed ones. So an interrupted pull (network, Ctrl-C, a killed process) never leaves
a half-written file under its final name, and rerunning it:

- skips a file whose final name already holds the listed bytes (re-hashed, not trusted by name);
- resumes a ``.part`` file with ``Range: bytes=N-`` (its first N bytes are re-hashed, not
  re-fetched); a server that ignores the range (``200``) makes it start over, one that refuses
  it (``416``) too;
- throws away a ``.part`` file whose bytes turn out wrong (digest mismatch) so that a third run
  fetches it afresh.

The digest in the partial's name ties it to one blob: a different version's file of the same
name never resumes from it.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from registry.client._errors import ClientError
from registry.client._refs import CHUNK_BYTES

#: A partial download: ``.NAME.<12 hex digits>.part``.
PARTIAL = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{12}\.part$")
#: Written by ``pull --for-serving`` next to the version's files.
PULL_RECORD = "registry-pull.json"


def partial_path(dest_dir: Path, name: str, digest: str) -> Path:
    return dest_dir / f".{name}.{digest.removeprefix('sha256:')[:12]}.part"


def is_complete(path: Path, digest: str, size: int | None) -> bool:
    """Whether ``path`` is a regular file holding exactly the listed bytes."""
    if path.is_symlink() or not path.is_file():
        return False
    if size is not None and path.stat().st_size != size:
        return False
    return "sha256:" + _hash_prefix(path, None).hexdigest() == digest


@dataclass
class Partial:
    """An open ``.part`` file positioned at its end, with the sha256 of what it holds."""

    path: Path
    fd: int
    offset: int
    hasher: hashlib._Hash

    @classmethod
    def open(cls, path: Path, size: int | None) -> Partial:
        """Open (or create, mode 0600, never through a symlink) the partial file; a partial
        longer than the listed size is emptied."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            have = os.fstat(fd).st_size
            if size is not None and have > size:
                os.ftruncate(fd, 0)
                have = 0
            hasher = _hash_prefix(path, have) if have else hashlib.sha256()
            os.lseek(fd, have, os.SEEK_SET)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, have, hasher)

    def restart(self) -> None:
        """Drop what the partial holds (the server sent the whole file, or refused the range)."""
        os.ftruncate(self.fd, 0)
        os.lseek(self.fd, 0, os.SEEK_SET)
        self.offset = 0
        self.hasher = hashlib.sha256()

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        self.hasher.update(chunk)
        self.offset += len(chunk)

    def close(self) -> None:
        os.fsync(self.fd)
        os.close(self.fd)

    @property
    def digest(self) -> str:
        return "sha256:" + self.hasher.hexdigest()


def _hash_prefix(path: Path, length: int | None) -> hashlib._Hash:
    """sha256 of the first ``length`` bytes of ``path`` (all of it when None)."""
    hasher = hashlib.sha256()
    left = length
    with path.open("rb") as fh:
        while left is None or left > 0:
            chunk = fh.read(CHUNK_BYTES if left is None else min(CHUNK_BYTES, left))
            if not chunk:
                break
            hasher.update(chunk)
            if left is not None:
                left -= len(chunk)
    return hasher


def check_target(dest: Path, force: bool, names: set[str]) -> None:
    """A download target: absent, empty, or holding only what a pull of these ``names`` leaves
    (the files, their partials, the pull record: a rerun resumes); anything with ``force``."""
    if dest.exists() and not dest.is_dir():
        raise ClientError(
            "target_not_empty", 0, "target exists and is not a directory", {"dir": str(dest)}
        )
    if not dest.is_dir() or force:
        return
    for entry in dest.iterdir():
        partial = PARTIAL.fullmatch(entry.name)
        if entry.name in names or entry.name == PULL_RECORD:
            continue
        if partial is not None and partial.group("name") in names:
            continue
        raise ClientError(
            "target_not_empty",
            0,
            "target directory holds other files (use --force to write into it)",
            {"dir": str(dest), "file": entry.name[:200]},
        )
