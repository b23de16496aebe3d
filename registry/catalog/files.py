"""The stored files of a version: looking one up, and the version digest of a file list."""

from __future__ import annotations

import hashlib
import json

from sqlalchemy.orm import Session

from registry.access.actor import Actor
from registry.catalog.models import VersionFile
from registry.catalog.queries import resolve_version
from registry.catalog.repository import VersionRepository
from registry.errors import VersionFileNotFound


def get_version_file(session: Session, *, actor: Actor, ref: str, name: str) -> VersionFile:
    """The file ``name`` of a version, or ``file_not_found`` (names are matched exactly)."""
    ctx = resolve_version(session, ref=ref, actor=actor)
    for f in VersionRepository(session).files([ctx.version.id])[ctx.version.id]:
        if f.name == name:
            return f
    raise VersionFileNotFound("no such file in this version", context={"file": name[:200]})


def version_digest(files: list[tuple[str, str, int]]) -> str:
    """sha256 of the canonical file manifest ``[{name, digest, size}]`` sorted by name."""
    manifest = [
        {"digest": f"sha256:{hex_}", "name": name, "size": size}
        for name, hex_, size in sorted(files)
    ]
    raw = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(raw).hexdigest()
