"""Garbage collection of unreferenced blobs, stale staging objects and multipart uploads.

Invariants (security.md §5.1, STYLE.md §3.4):
- A blob is deleted only if the database says it is unreferenced **and** it is older than
  the grace window. The window covers the gap between ``commit_staged`` and the caller's DB
  commit (every commit gives the blob a fresh modification time for that reason), and for
  staging objects the whole life of an upload session: so it must be at least the longest
  upload-session lifetime (``server.upload_ttl_s``). :func:`check_grace` refuses a shorter
  one unless forced; a shorter window next to a live server deletes in-flight bytes. Just
  before deleting, the blob is stat'ed again so one refreshed after it was listed survives.
- ``referenced`` is asked about at most ``batch_size`` (≤ 1000) digests at a time, so the
  caller's ``IN (...)`` query stays bounded and memory does not grow with the bucket.
- Everything is idempotent: objects already gone count as ``missing``, never as errors (the
  MLflow gc crashes, #3595 / #15461). A second run right after a first deletes nothing.
- ``dry_run`` lists what would go and deletes nothing.

The caller wires ``referenced`` to the database and writes the audit entries from
:attr:`GcReport.deleted_blobs`; this module touches no database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from registry.errors import BlobNotFound
from registry.storage.base import ArtifactStore, BlobStat

logger = logging.getLogger(__name__)

MAX_BATCH = 1000


class GraceTooShort(ValueError):
    """A gc grace window shorter than the longest upload session: gc would delete the staged
    files and freshly published blobs of pushes still in flight."""

    def __init__(self, grace_s: int, min_grace_s: int) -> None:
        super().__init__(
            f"a grace of {grace_s} s is shorter than the longest upload session "
            f"({min_grace_s} s, REGISTRY_SERVER__UPLOAD_TTL_S): gc would delete the bytes of "
            "pushes still in flight; use a grace of at least that, or --force when no server "
            "is taking pushes"
        )
        self.grace_s = grace_s
        self.min_grace_s = min_grace_s


def check_grace(grace_s: int, *, min_grace_s: int, force: bool = False) -> None:
    """Refuse (GraceTooShort) a grace window below ``min_grace_s`` unless ``force``."""
    if grace_s < min_grace_s and not force:
        raise GraceTooShort(grace_s, min_grace_s)


@dataclass(slots=True)
class GcReport:
    """What one gc run saw and did. ``deleted_blobs`` holds bare hex digests."""

    dry_run: bool
    cutoff: datetime
    blobs_scanned: int = 0
    blobs_referenced: int = 0
    blobs_young: int = 0
    blobs_missing: int = 0
    blobs_deleted: int = 0
    deleted_blobs: list[str] = field(default_factory=list)
    staging_young: int = 0
    staging_deleted: int = 0
    uploads_aborted: int = 0


def collect_garbage(
    store: ArtifactStore,
    *,
    referenced: Callable[[list[str]], set[str]],
    grace_s: int,
    now: datetime | None = None,
    dry_run: bool = False,
    batch_size: int = MAX_BATCH,
) -> GcReport:
    """Delete unreferenced old blobs, old staging objects and old incomplete uploads.

    ``referenced(batch)`` returns the subset of ``batch`` (hex digests) that the database
    still references. ``now`` must be timezone-aware (tests move it to age objects).
    """
    if grace_s < 0:
        raise ValueError("grace_s must be >= 0")
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be in [1, {MAX_BATCH}]")
    now = now if now is not None else datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    cutoff = now - timedelta(seconds=grace_s)
    report = GcReport(dry_run=dry_run, cutoff=cutoff)

    batch: list[BlobStat] = []
    for stat in store.list_blobs():
        report.blobs_scanned += 1
        if stat.last_modified > cutoff:
            report.blobs_young += 1
            continue
        batch.append(stat)
        if len(batch) >= batch_size:
            _sweep_blobs(store, batch, referenced, cutoff, report)
            batch = []
    if batch:
        _sweep_blobs(store, batch, referenced, cutoff, report)

    for entry in store.list_staging():
        if entry.last_modified > cutoff:
            report.staging_young += 1
            continue
        if not dry_run:
            store.delete_staging_key(entry.key)
        report.staging_deleted += 1

    for upload in store.list_incomplete_uploads():
        if upload.initiated > cutoff:
            continue
        if not dry_run:
            store.abort_incomplete_upload(upload)
        report.uploads_aborted += 1

    logger.info(
        "storage gc%s: scanned=%d deleted=%d referenced=%d young=%d staging_deleted=%d "
        "uploads_aborted=%d",
        " (dry run)" if dry_run else "",
        report.blobs_scanned,
        report.blobs_deleted,
        report.blobs_referenced,
        report.blobs_young,
        report.staging_deleted,
        report.uploads_aborted,
    )
    return report


def _sweep_blobs(
    store: ArtifactStore,
    batch: list[BlobStat],
    referenced: Callable[[list[str]], set[str]],
    cutoff: datetime,
    report: GcReport,
) -> None:
    keep = referenced([stat.hex for stat in batch])
    for stat in batch:
        if stat.hex in keep:
            report.blobs_referenced += 1
            continue
        # Re-stat: a concurrent upload may have deduplicated onto this blob (refreshing its
        # mtime) after it was listed; it must then survive until its row is committed.
        try:
            current = store.stat_blob(stat.hex)
        except BlobNotFound:
            report.blobs_missing += 1
            continue
        if current.last_modified > cutoff:
            report.blobs_young += 1
            continue
        if not report.dry_run:
            store.delete_blob(stat.hex)
            logger.info("storage gc deleted blob sha256:%s", stat.hex)
        report.blobs_deleted += 1
        report.deleted_blobs.append(stat.hex)
