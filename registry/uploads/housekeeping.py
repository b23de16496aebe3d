"""Housekeeping of the uploads domain, for ``storage gc`` (``registry.maintenance``): which
blobs rows still reference, and the upload sessions past their deadline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from registry.storage.base import ArtifactStore
from registry.uploads.blob_index import BlobRepository
from registry.uploads.repository import UploadRepository


def referenced_blobs(session: Session, hex_digests: Sequence[str]) -> set[str]:
    """Those of ``hex_digests`` a row still references (gc keeps them)."""
    return BlobRepository(session).existing(list(hex_digests))


def expire_sessions(session: Session, store: ArtifactStore, *, now: datetime) -> int:
    """Delete the upload sessions past their deadline and discard their staging; return how
    many, in the caller's unit of work."""
    repo = UploadRepository(session)
    stale = repo.expired(now)
    for upload in stale:
        store.discard_staging(upload.id)
    repo.delete([u.id for u in stale])
    return len(stale)
