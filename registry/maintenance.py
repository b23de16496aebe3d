"""Operator maintenance jobs (``adapter-registry storage gc``): run outside requests, each in
its own unit of work."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from registry.audit.service import AuditEntry, append
from registry.db.engine import make_engine
from registry.db.migrate import check_schema
from registry.db.session import Sessions, unit_of_work
from registry.idempotency.service import purge_expired
from registry.settings import Settings
from registry.storage import gc
from registry.storage.factory import make_store
from registry.uploads.housekeeping import expire_sessions, referenced_blobs


def storage_gc(
    settings: Settings,
    *,
    dry_run: bool = False,
    grace_s: int | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Collect unreferenced blobs and stale staging (older than the grace window), expired
    upload sessions and idempotency records. Safe to run while the server takes pushes: a blob
    is only deleted when no row references it and it is older than the grace window, which
    must be at least ``server.upload_ttl_s`` (the longest upload session).

    Errors: ``gc.GraceTooShort`` (before touching anything) when the grace window is shorter
    than ``server.upload_ttl_s`` and ``force`` is not set.
    """
    grace = settings.storage.gc_grace_s if grace_s is None else grace_s
    gc.check_grace(grace, min_grace_s=settings.server.upload_ttl_s, force=force)
    engine = make_engine(settings.database, application_name="adapter-registry-gc")
    try:
        check_schema(engine)
        sessions = Sessions(engine)
        store = make_store(settings.storage)

        def referenced(batch: list[str]) -> set[str]:
            with unit_of_work(sessions.read) as session:
                return referenced_blobs(session, batch)

        report = gc.collect_garbage(store, referenced=referenced, grace_s=grace, dry_run=dry_run)
        expired_uploads = 0
        purged_keys = 0
        if not dry_run:
            now = datetime.now(UTC)
            with unit_of_work(sessions.write) as session:
                expired_uploads = expire_sessions(session, store, now=now)
                purged_keys = purge_expired(session, now=now)
                append(
                    session,
                    AuditEntry(
                        action="storage.gc",
                        resource="storage",
                        actor="system:storage-gc",
                        after={
                            "blobs_deleted": report.blobs_deleted,
                            "deleted_blobs": report.deleted_blobs[:1000],
                            "expired_upload_sessions": expired_uploads,
                            "expired_idempotency_records": purged_keys,
                        },
                    ),
                )
        out = dataclasses.asdict(report)
        out["cutoff"] = report.cutoff.isoformat()
        out["expired_upload_sessions"] = expired_uploads
        out["expired_idempotency_records"] = purged_keys
        return out
    finally:
        engine.dispose()
