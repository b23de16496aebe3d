"""Looking up the stored files of a version."""

from __future__ import annotations

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
