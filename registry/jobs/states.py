"""The state machine of a job: the table of the moves it allows and the only two functions that
move it (like :mod:`registry.promotions.states`).

A job is created ``queued``. A worker claims it (``running``); it ends ``succeeded``, ``failed``
or ``cancelled``. A queued job may be cancelled at once; a running one is cancelled by its
worker when it sees ``cancel_requested``. A running job whose worker stopped sending heartbeats
(a crashed process) is queued again, or failed once it has used its attempts.

``transition`` moves a loaded row; ``compare_and_set`` moves a row by id only if it is still in
the state the caller saw (the worker's claim: of two workers that saw the same queued job, one
wins). Both check the move against ``JOB_TRANSITIONS`` and are the only writers of ``state``,
``started_at`` and ``finished_at`` (``tests/test_layering.py`` refuses a write anywhere else).
A move the table does not allow raises ``job_state_conflict`` (409) and changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from registry.errors import JobStateConflict
from registry.jobs.models import FINISHED_STATES, Job, JobState

JOB_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.queued: frozenset({JobState.running, JobState.cancelled}),
    JobState.running: frozenset(
        {
            JobState.succeeded,
            JobState.failed,
            JobState.cancelled,
            JobState.queued,  # its worker vanished (stale heartbeat): run it again
        }
    ),
    JobState.succeeded: frozenset(),
    JobState.failed: frozenset(),
    JobState.cancelled: frozenset(),
}


def _check(job_id: uuid.UUID, state: str, to: JobState) -> None:
    try:
        allowed = JOB_TRANSITIONS[JobState(state)]
    except ValueError:
        allowed = frozenset()
    if to not in allowed:
        raise JobStateConflict(
            f"the job is {state} and cannot become {to}",
            context={"id": str(job_id), "state": state, "to": str(to)},
        )


def _times(to: JobState, at: datetime) -> dict[str, datetime | None]:
    """What a move stamps: a claim starts the job, an end finishes it, a requeue clears both."""
    if to == JobState.running:
        return {"started_at": at, "heartbeat_at": at}
    if to == JobState.queued:
        return {"started_at": None, "heartbeat_at": None}
    if to in FINISHED_STATES:
        return {"finished_at": at}
    return {}


def transition(row: Job, to: JobState, *, at: datetime) -> None:
    """Move ``row`` to ``to`` at ``at``; ``job_state_conflict`` when the table does not allow
    it. Flushes nothing."""
    _check(row.id, row.state, to)
    row.state = to
    for name, value in _times(to, at).items():
        setattr(row, name, value)


def compare_and_set(
    session: Session, job_id: uuid.UUID, *, seen: JobState, to: JobState, at: datetime
) -> bool:
    """Move job ``job_id`` from ``seen`` to ``to`` at ``at`` in one ``UPDATE ... WHERE state =
    seen``; False when it is no longer ``seen`` (another worker moved it first). A claim
    (``running``) also counts an attempt. ``job_state_conflict`` when the table does not allow
    the move."""
    _check(job_id, seen, to)
    values: dict[str, object] = {"state": to, **_times(to, at)}
    if to == JobState.running:
        values["attempts"] = Job.attempts + 1
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == seen)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)
