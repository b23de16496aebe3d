"""Pure helpers: adapter references, digests, URL segments and local file names."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from registry.client._errors import ClientError

CHUNK_BYTES = 1024 * 1024


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (constant memory)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def version_digest(files: Sequence[Mapping[str, Any]]) -> str:
    """The version digest of a file list: sha256 of the canonical ``[{digest, name, size}]``
    manifest sorted by name (the server's definition, recomputed to verify a listing)."""
    manifest = sorted(
        (
            {"digest": str(f["digest"]), "name": str(f["name"]), "size": int(f["size"])}
            for f in files
        ),
        key=lambda f: (f["name"], f["digest"], f["size"]),
    )
    raw = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def split_ref(ref: str) -> tuple[str, str, str]:
    """``NS/NAME[@vN|@latest|@sha256:<hex>]`` → (namespace, name, selector); the server checks
    the parts themselves."""
    path, sep, selector = ref.partition("@")
    namespace, slash, name = path.partition("/")
    if not slash or not namespace or not name or "/" in name or (sep and not selector):
        raise ClientError(
            "invalid_reference",
            0,
            "adapter reference must be NS/NAME[@vN|@latest|@sha256:<hex>]",
            {"value": ref[:200]},
        )
    return namespace, name, selector or "latest"


def seg(value: str, safe: str = "") -> str:
    """One percent-encoded URL path segment."""
    return quote(value, safe=safe)


def version_path(ref: str) -> str:
    """The API path of an adapter version reference."""
    namespace, name, selector = split_ref(ref)
    return f"/api/v1/adapters/{seg(namespace)}/{seg(name)}/versions/{seg(selector, ':')}"


def read_file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            yield chunk


def file_mode() -> int:
    """The mode ``open()`` would give a new file under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def safe_file_name(name: str) -> bool:
    """Whether a server-listed file name is a plain name (no path parts) safe to write."""
    return (
        bool(name)
        and name not in (".", "..")
        and "/" not in name
        and "\\" not in name
        and "\x00" not in name
        and Path(name).name == name
    )
