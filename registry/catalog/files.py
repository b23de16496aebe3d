"""The stored files of a version: looking one up, and the version digest of a file list."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy.orm import Session

from registry.access.actor import Actor
from registry.catalog.models import VersionFile, VersionState
from registry.catalog.queries import VersionContext, resolve_version
from registry.catalog.repository import BaseModelRepository, VersionRepository
from registry.errors import VersionFailedVerification, VersionFileNotFound, VersionVerifying


def require_verified(ctx: VersionContext) -> None:
    """``version_verifying`` while a direct upload's bytes are not yet hashed by the server;
    ``version_failed_verification`` once they failed (its files are never served: a declared
    digest may name a blob of someone else's, which the uploader never had)."""
    if ctx.version.state == VersionState.verifying:
        raise VersionVerifying(
            "the version's files are still being verified; try again shortly",
            context={"ref": ctx.ref, "state": ctx.version.state},
        )
    report = ctx.version.validation_report
    verification = report.get("verification") if isinstance(report, dict) else None
    if isinstance(verification, dict) and verification.get("verified") is False:
        raise VersionFailedVerification(
            "the version's uploaded bytes did not match their declared digest",
            context={"ref": ctx.ref, "reason": str(verification.get("reason"))},
        )


def get_version_file(session: Session, *, actor: Actor, ref: str, name: str) -> VersionFile:
    """The file ``name`` of a version, or ``file_not_found`` (names are matched exactly)."""
    ctx = resolve_version(session, ref=ref, actor=actor)
    require_verified(ctx)
    for f in VersionRepository(session).files([ctx.version.id])[ctx.version.id]:
        if f.name == name:
            return f
    raise VersionFileNotFound("no such file in this version", context={"file": name[:200]})


@dataclass(frozen=True, slots=True)
class StoredFile:
    name: str
    digest: str  # the blob's sha256 hex
    size: int


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """A version as a computation on its files needs it: where it came from and its blobs."""

    ctx: VersionContext
    base: str  # NAME@REV of the base it was trained on
    files: list[StoredFile]

    @property
    def ref(self) -> str:
        return self.ctx.ref

    @property
    def digest(self) -> str:
        return self.ctx.version.digest

    @property
    def peft_type(self) -> str:
        return self.ctx.version.peft_type


def stored_version(session: Session, *, actor: Actor, ref: str) -> StoredVersion:
    """The version ``ref`` (which the caller must be allowed to read), its base and its files.

    Errors: those of :func:`~registry.catalog.queries.resolve_version`."""
    ctx = resolve_version(session, ref=ref, actor=actor)
    require_verified(ctx)
    rows = VersionRepository(session).files([ctx.version.id])[ctx.version.id]
    base_id = ctx.version.base_model_version_id
    base = BaseModelRepository(session).names_of([base_id]).get(base_id, "?")
    return StoredVersion(ctx, base, [StoredFile(f.name, f.digest, f.size) for f in rows])


def version_digest(files: list[tuple[str, str, int]]) -> str:
    """sha256 of the canonical file manifest ``[{name, digest, size}]`` sorted by name."""
    manifest = [
        {"digest": f"sha256:{hex_}", "name": name, "size": size}
        for name, hex_, size in sorted(files)
    ]
    raw = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(raw).hexdigest()
