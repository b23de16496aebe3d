"""A job's life on the worker's side: claimed, kept alive (heartbeat and progress), finished,
or found abandoned by a stopped worker. Each function runs in the caller's (short) transaction
and moves the job only through :mod:`registry.jobs.states`.

The claim is safe with any number of workers and replicas: the oldest queued row is picked
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, under the database's write lock on SQLite) and
moved by a compare-and-set on its state, so no two workers ever run the same job.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from registry.audit.service import AuditEntry, append
from registry.errors import JobNotFound, RegistryError
from registry.jobs.models import Job, JobState
from registry.jobs.repository import JobRepository
from registry.jobs.states import compare_and_set, transition

#: Who the audit log names for what the worker does by itself (finishing, requeueing).
ACTOR = "system:jobs"
#: The code of a failure that is not a ``RegistryError`` (its detail stays in the server log).
JOB_FAILED = "job_failed"


@dataclass(frozen=True, slots=True)
class Claimed:
    """A job a worker now runs: everything it needs, as plain values."""

    id: uuid.UUID
    kind: str
    target: str
    params: dict[str, Any]
    created_by_id: uuid.UUID
    scopes: frozenset[str] | None
    ci_identity: dict[str, Any] | None


def claim_next(session: Session, *, now: datetime) -> Claimed | None:
    """Claim the oldest queued job (``running``, one attempt more); None when there is none."""
    repo = JobRepository(session)
    for _ in range(3):  # a compare-and-set lost to another worker: look again
        job_id = repo.next_queued()
        if job_id is None:
            return None
        if compare_and_set(session, job_id, seen=JobState.queued, to=JobState.running, at=now):
            job = repo.get(job_id)
            assert job is not None
            return Claimed(
                id=job.id,
                kind=job.kind,
                target=job.target,
                params=dict(job.params),
                created_by_id=job.created_by_id,
                scopes=frozenset(job.scopes) if job.scopes is not None else None,
                ci_identity=dict(job.ci_identity) if job.ci_identity else None,
            )
    return None


def beat(
    session: Session, job_id: uuid.UUID, *, now: datetime, done: int | None, total: int | None
) -> bool:
    """Refresh the heartbeat (and progress) of a running job; whether its worker should stop
    (cancel asked, or the job no longer running)."""
    return JobRepository(session).beat(job_id, at=now, done=done, total=total)


def _audit_finish(session: Session, job: Job) -> None:
    inputs = [{"ref": i.get("ref"), "digest": i.get("digest")} for i in job.params["inputs"]]
    result, error = job.result or {}, job.error or {}
    append(
        session,
        AuditEntry(
            action="job.finish",
            resource=f"job:{job.id}",
            actor=ACTOR,
            after={
                "state": job.state,
                "kind": job.kind,
                "target": job.target,
                "inputs": inputs,
                "output": {"ref": result.get("ref"), "digest": result.get("digest")}
                if result
                else None,
                "error": error.get("code"),
                "attempts": job.attempts,
            },
        ),
    )


def finish(
    session: Session,
    job_id: uuid.UUID,
    to: JobState,
    *,
    now: datetime,
    result: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> Job:
    """End a running job (``succeeded`` with its result, ``failed`` with its error, or
    ``cancelled``). Flushes; audited. ``job_state_conflict`` when it is no longer running
    (found abandoned and requeued meanwhile): the caller's work is then discarded."""
    job = JobRepository(session).get(job_id, for_update=True)
    if job is None:
        raise JobNotFound("no such job", context={"id": str(job_id)})
    transition(job, to, at=now)
    job.result = result
    job.error = error
    session.flush()
    _audit_finish(session, job)
    return job


def _requeue(session: Session, job: Job, *, now: datetime, reason: str) -> None:
    transition(job, JobState.queued, at=now)
    session.flush()
    append(
        session,
        AuditEntry(
            action="job.requeue",
            resource=f"job:{job.id}",
            actor=ACTOR,
            after={"attempts": job.attempts, "reason": reason},
        ),
    )


def release(session: Session, job_id: uuid.UUID, *, now: datetime) -> None:
    """Queue a running job again (its worker is stopping before it could finish). Audited."""
    job = JobRepository(session).get(job_id, for_update=True)
    if job is not None and job.state == JobState.running:
        _requeue(session, job, now=now, reason="worker_stopping")


def cancel_requested(session: Session, job_id: uuid.UUID) -> bool:
    """Whether the job is asked to stop, read under its row lock (the last check before a
    result is registered, in the same transaction)."""
    job = JobRepository(session).get(job_id, for_update=True)
    return job is None or job.cancel_requested


def error_body(exc: BaseException) -> dict[str, Any]:
    """What a failed job keeps of its error: a ``RegistryError``'s code, detail and context
    (what the API would have answered); anything else only as ``job_failed``."""
    if isinstance(exc, RegistryError):
        return {"code": exc.code, "detail": exc.detail, "context": dict(exc.context)}
    return {
        "code": JOB_FAILED,
        "detail": "the job failed on the server (see its log)",
        "context": {"exception": type(exc).__name__},
    }


def requeue_stale(
    session: Session, *, now: datetime, stale_after_s: float, max_attempts: int, limit: int = 20
) -> list[tuple[uuid.UUID, str]]:
    """Running jobs whose worker stopped sending heartbeats: queued again, or ``failed``
    (``job_failed``, reason ``abandoned``) once claimed ``max_attempts`` times. Returns
    ``(id, new state)`` of each; audited."""
    moved = []
    stale = JobRepository(session).stale_running(
        older_than=now - timedelta(seconds=stale_after_s), limit=limit
    )
    for job in stale:
        if job.attempts >= max_attempts:
            transition(job, JobState.failed, at=now)
            job.error = {
                "code": JOB_FAILED,
                "detail": "the worker running the job stopped, and it has used its attempts",
                "context": {"reason": "abandoned", "attempts": job.attempts},
            }
            session.flush()
            _audit_finish(session, job)
        else:
            _requeue(session, job, now=now, reason="abandoned")
        moved.append((job.id, job.state))
    return moved
