"""The verification job of a direct upload: hash the stored object off the request path, then
make the ``verifying`` version available or quarantine it.

Queued (kind ``verify``) in the registration's own transaction (:func:`enqueue`), so a version
is never ``verifying`` without a job that will end it; run by the job worker like every job
(claims, heartbeats, requeue of an abandoned run). For each direct file, ``commit_staged``
streams the staged object, hashes it, and only when it hashes to the declared digest copies it
onto its content address (a blob key never receives unverified bytes). Outcome:

- every file matches: the version becomes ``validated``;
- a file does not hash to its digest, changed while read, or is gone: ``quarantined``, the
  reason kept in the version's ``validation_report.verification`` and in the audit log;
- the store is unavailable: the job fails like any job (``storage_unavailable``) and the version
  stays ``verifying``; re-run it with ``jobs retry``-style tooling or push again.

The job ends ``succeeded`` in both of the first two cases (the verification ran; its verdict is
the version's state), with ``result = {"ref", "digest", "state", "problem"}``.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from registry.access.actor import Actor
from registry.catalog.verification import finish_verification
from registry.db.session import unit_of_work
from registry.errors import BlobNotFound, IntegrityFailure
from registry.jobs import lifecycle
from registry.jobs.env import WorkerEnv
from registry.jobs.models import Job, JobKind, JobState
from registry.jobs.repository import JobRepository
from registry.storage.base import StagedObject


def enqueue(
    session: Session,
    *,
    actor: Actor,
    target: str,
    version_id: uuid.UUID,
    files: list[tuple[str, str, str, int]],
) -> uuid.UUID:
    """Queue the verification of a ``verifying`` version: ``files`` are (name, staging key,
    declared sha256 hex, size). Runs in the registration's transaction; flushes."""
    principal = actor.principal
    job = JobRepository(session).add(
        Job(
            id=uuid.uuid4(),
            kind=JobKind.verify,
            state=JobState.queued,
            params={
                "inputs": [],
                "version_id": str(version_id),
                "files": [{"name": n, "key": k, "digest": d, "size": s} for n, k, d, s in files],
            },
            target=target,
            progress_done=0,
            progress_total=len(files),
            cancel_requested=False,
            created_by_id=principal.id,
            scopes=None,
            ci_identity=None,
            attempts=0,
            created_at=datetime.now(UTC),
        )
    )
    return job.id


def _check(env: WorkerEnv, f: dict[str, Any]) -> dict[str, Any] | None:
    """Hash one staged direct file and publish it; the problem found, or None."""
    staged = StagedObject(key=str(f["key"]), size=int(f["size"]), sha256_hex=str(f["digest"]))
    try:
        env.store.commit_staged(staged)
    except IntegrityFailure as exc:
        return {"reason": "digest_mismatch", "file": f["name"], **dict(exc.context)}
    except BlobNotFound:
        # A retried run after a crash between publish and finish: the staged object is gone
        # but the blob key holds it (blob keys only ever receive verified bytes).
        if env.store.blob_exists(staged.sha256_hex):
            return None
        return {"reason": "staged_object_missing", "file": f["name"]}
    return None


def run_verify(env: WorkerEnv, claimed: lifecycle.Claimed) -> dict[str, Any]:
    """Verify every direct file of the job's version, move the version and end the job."""
    problem: dict[str, Any] | None = None
    for f in claimed.params["files"]:
        problem = _check(env, f)
        if problem is not None:
            break
    with unit_of_work(env.sessions.write) as session:
        ctx = finish_verification(
            session, version_id=uuid.UUID(claimed.params["version_id"]), problem=problem
        )
        result: dict[str, Any] = {
            "ref": ctx.ref if ctx is not None else claimed.target,
            "digest": ctx.version.digest if ctx is not None else None,
            "state": ctx.version.state if ctx is not None else None,
            "problem": problem,
        }
        lifecycle.finish(
            session, claimed.id, JobState.succeeded, now=datetime.now(UTC), result=result
        )
    if problem is not None:  # quarantined: its unverified bytes are not kept
        for f in claimed.params["files"]:
            with contextlib.suppress(Exception):  # gc collects what is left
                env.store.delete_staging_key(str(f["key"]))
    return result
