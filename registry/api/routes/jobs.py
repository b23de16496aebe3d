"""Server-side adapter maths: queue a merge, compose or aggregate job, follow it, cancel it."""

from __future__ import annotations

import uuid

from fastapi import status

from registry import errors
from registry.api.deps import ActorDep, SessionDep, WriteDep
from registry.api.pagination import Page, decode_time_token, page_of, time_key
from registry.api.routes._common import VERSION_NOT_FOUND, PageDep, authenticated_router, responses
from registry.jobs import service as jobs
from registry.jobs.schemas import JobCreate, JobRead

router = authenticated_router(prefix="/api/v1/jobs", tags=["jobs"])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobRead,
    responses=responses(
        *VERSION_NOT_FOUND,
        errors.BaseModelNotFound,
        errors.BaseModelVersionExists,
        errors.PolicyDenied,
        errors.BadRequest,
        errors.IncompatibleAdapters,
        errors.MathsUnavailable,
    ),
)
def create_job(body: JobCreate, ctx: WriteDep) -> object:
    """Queue a job: ``compose`` adapters of one base into the next version of ``target``,
    ``aggregate`` federated sites into it, or ``merge`` an adapter into its base's stored
    weights as the base model ``register_as@revision``. The caller must be allowed to read
    every input and to run the operation and register in the target's namespace (a merge:
    to register base models). Answers 202 with the queued job (``Location``: its URL); a
    worker of the server runs it (``GET /api/v1/jobs/{id}`` follows it). Without the maths
    extra (torch) on the server: 501 ``maths_unavailable``."""
    response = ctx.idempotent(
        body,
        lambda: jobs.create_job(ctx.session, actor=ctx.actor, body=body.root).read(),
        status_code=status.HTTP_202_ACCEPTED,
    )
    response.headers["Location"] = f"/api/v1/jobs/{_id_of(response.body)}"
    return response


def _id_of(body: bytes | memoryview) -> str:
    """The job id in a JSON answer (fresh or replayed) of ``create_job``."""
    return str(JobRead.model_validate_json(bytes(body)).id)


@router.get("", response_model=Page[JobRead], responses=responses(errors.InvalidPageToken))
def list_jobs(actor: ActorDep, session: SessionDep, page: PageDep) -> Page[JobRead]:
    """Your jobs newest first (an admin: everyone's)."""
    rows = jobs.list_jobs(
        session, actor=actor, before=decode_time_token(page.token), limit=page.fetch
    )
    return page_of(rows, page.limit, lambda v: v.read(), key=lambda j: time_key(j.created_at, j.id))


@router.get("/{job_id}", response_model=JobRead, responses=responses(errors.JobNotFound))
def get_job(job_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> JobRead:
    """One job: its state, progress (``progress_done`` of ``progress_total``), and its result
    (``ref`` and ``digest`` of what it registered, the recipe) or error (``code``, ``detail``,
    ``context``, as the API would have answered it)."""
    return jobs.get_job(session, actor=actor, job_id=job_id).read()


@router.post(
    "/{job_id}/cancel",
    response_model=JobRead,
    responses=responses(errors.JobNotFound, errors.JobStateConflict),
)
def cancel_job(job_id: uuid.UUID, ctx: WriteDep) -> object:
    """Cancel a job: a queued one is ``cancelled`` at once; a running one gets
    ``cancel_requested`` and its worker ends it ``cancelled`` at its next progress report
    (nothing is registered). A finished job: 409 ``job_state_conflict``."""
    return ctx.idempotent(
        None, lambda: jobs.cancel_job(ctx.session, actor=ctx.actor, job_id=job_id).read()
    )
