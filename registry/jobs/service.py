"""Jobs as their creators see them: create (admitted, then queued), read, list and cancel.

Who sees a job: its creator, and admins (every job). Anyone else is told ``job_not_found``.
Every change is audited in its transaction: ``job.create`` (with the inputs' digests),
``job.cancel``, and the worker's ``job.finish`` (:mod:`registry.jobs.lifecycle`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from registry.access.actor import Actor, registry_resource
from registry.auth.models import Role
from registry.auth.service import current_attributes
from registry.errors import JobNotFound, JobStateConflict
from registry.jobs import admission
from registry.jobs.models import FINISHED_STATES, Job, JobState
from registry.jobs.repository import JobRepository
from registry.jobs.schemas import JobRead, MergeJob
from registry.jobs.states import transition


@dataclass(frozen=True, slots=True)
class JobView:
    job: Job
    created_by: str

    def read(self) -> JobRead:
        j = self.job
        return JobRead(
            id=j.id,
            kind=j.kind,
            state=j.state,
            target=j.target,
            params=dict(j.params or {}),
            progress_done=j.progress_done,
            progress_total=j.progress_total,
            cancel_requested=j.cancel_requested,
            result=j.result,
            error=j.error,
            created_by=self.created_by,
            attempts=j.attempts,
            created_at=j.created_at,
            started_at=j.started_at,
            finished_at=j.finished_at,
            heartbeat_at=j.heartbeat_at,
        )


def _is_admin(actor: Actor) -> bool:
    return actor.subject.role == Role.admin


def _view(session: Session, job: Job, names: dict[uuid.UUID, str] | None = None) -> JobView:
    name = (names or {}).get(job.created_by_id)
    if name is None:
        attributes = current_attributes(session, job.created_by_id)
        name = attributes.name if attributes is not None else str(job.created_by_id)
    return JobView(job, name)


def create_job(
    session: Session, *, actor: Actor, body: admission.JobBody, now: datetime | None = None
) -> JobView:
    """Admit the request (:mod:`registry.jobs.admission`) and queue it. Flushes; audited.

    Errors: those of the admission (``invalid_name``, the not-found codes, ``policy_denied``,
    ``incompatible_adapters``, ``maths_unavailable``, ...)."""
    if isinstance(body, MergeJob):
        admitted = admission.admit_merge(session, actor, body)
    else:
        admitted = admission.admit_combination(session, actor, body)
    principal = actor.principal
    job = JobRepository(session).add(
        Job(
            id=uuid.uuid4(),
            kind=admitted.kind,
            state=JobState.queued,
            params=admitted.params,
            target=admitted.target,
            progress_done=0,
            progress_total=0,
            cancel_requested=False,
            created_by_id=principal.id,
            scopes=sorted(principal.scopes) if principal.scopes is not None else None,
            ci_identity=dict(principal.ci_identity) if principal.ci_identity else None,
            attempts=0,
            created_at=now or datetime.now(UTC),
        )
    )
    actor.audit(
        session,
        "job.create",
        f"job:{job.id}",
        after={
            "kind": admitted.kind,
            "target": admitted.target,
            "inputs": [{"ref": v.ref, "digest": v.digest} for v in admitted.inputs],
        },
    )
    return JobView(job, principal.name)


def _load(session: Session, actor: Actor, job_id: uuid.UUID, *, for_update: bool) -> Job:
    """The job, if the caller may see it (its creator, an admin); else ``job_not_found``."""
    actor.require("read", registry_resource())
    job = JobRepository(session).get(job_id, for_update=for_update)
    if job is None or (job.created_by_id != actor.id and not _is_admin(actor)):
        raise JobNotFound("no such job", context={"id": str(job_id)})
    return job


def get_job(session: Session, *, actor: Actor, job_id: uuid.UUID) -> JobView:
    """One job (``job_not_found`` when it is not there or not the caller's)."""
    return _view(session, _load(session, actor, job_id, for_update=False))


def list_jobs(
    session: Session, *, actor: Actor, before: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[JobView]:
    """Jobs newest first: the caller's own, or every job for an admin."""
    actor.require("read", registry_resource())
    jobs = JobRepository(session).list_page(
        created_by=None if _is_admin(actor) else actor.id, before=before, limit=limit
    )
    names: dict[uuid.UUID, str] = {actor.id: actor.name}
    views = []
    for job in jobs:
        view = _view(session, job, names)
        names[job.created_by_id] = view.created_by
        views.append(view)
    return views


def cancel_job(
    session: Session, *, actor: Actor, job_id: uuid.UUID, now: datetime | None = None
) -> JobView:
    """Cancel a job: a queued one is ``cancelled`` at once; a running one is asked to stop
    (``cancel_requested``; its worker ends it ``cancelled`` at its next progress report) and
    asking again changes nothing. Flushes; audited.

    Errors: ``job_not_found``, ``job_state_conflict`` (it has finished)."""
    job = _load(session, actor, job_id, for_update=True)
    before = {"state": job.state, "cancel_requested": job.cancel_requested}
    if job.state in FINISHED_STATES:
        raise JobStateConflict(
            f"the job has finished ({job.state})",
            context={"id": str(job.id), "state": job.state},
        )
    if job.state == JobState.running and job.cancel_requested:
        return _view(session, job)  # asked already: its worker is stopping it
    job.cancel_requested = True
    if job.state == JobState.queued:
        transition(job, JobState.cancelled, at=now or datetime.now(UTC))
    session.flush()
    actor.audit(
        session,
        "job.cancel",
        f"job:{job.id}",
        before=before,
        after={"state": job.state, "cancel_requested": job.cancel_requested},
    )
    return _view(session, job)
