"""A job's state machine, move by move: for every (from, to) pair of states, ``transition`` and
``compare_and_set`` either apply the move (state and its times stored) or refuse it with
``job_state_conflict`` and leave the stored row as it was. On a real job row (made through the
API) in the real database of the selected dialect."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime

import pytest

from registry.db.session import unit_of_work
from registry.errors import JobStateConflict
from registry.jobs.models import Job, JobState
from registry.jobs.states import JOB_TRANSITIONS, compare_and_set, transition
from tests.jobs.conftest import World

S = JobState
# The moves the registry makes, written out here so that a change of the table is deliberate.
ALLOWED = {
    (S.queued, S.running),
    (S.queued, S.cancelled),
    (S.running, S.succeeded),
    (S.running, S.failed),
    (S.running, S.cancelled),
    (S.running, S.queued),
}
PAIRS = list(itertools.product(JobState, JobState))
BEFORE = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
AT = datetime(2026, 6, 7, 8, 9, 10, tzinfo=UTC)
Stored = tuple[str, datetime | None, datetime | None, datetime | None, int]


@pytest.fixture(scope="module")
def world(shared_world: World) -> World:
    return shared_world


@pytest.fixture(scope="module")
def job_id(world: World) -> uuid.UUID:
    r = world.submit(world.compose())
    assert r.status_code == 202, r.text
    return uuid.UUID(r.json()["id"])


def stored(world: World, job_id: uuid.UUID) -> Stored:
    with unit_of_work(world.env.sessions.read) as session:
        row = session.get_one(Job, job_id)
        return row.state, row.started_at, row.finished_at, row.heartbeat_at, row.attempts


def arrange(world: World, job_id: uuid.UUID, state: JobState) -> Stored:
    """The job in ``state`` with every time set to ``BEFORE`` (written directly: the test's
    arrangement, not a move of the machine)."""
    with unit_of_work(world.env.sessions.write) as session:
        row = session.get_one(Job, job_id)
        row.state = state
        row.started_at = row.finished_at = row.heartbeat_at = BEFORE
        row.attempts = 1
    return stored(world, job_id)


def expected(before: JobState, to: JobState, *, claim_counts: bool) -> Stored:
    started: datetime | None = BEFORE
    heartbeat: datetime | None = BEFORE
    finished: datetime | None = BEFORE
    attempts = 1
    if to == S.running:
        started = heartbeat = AT
        attempts += 1 if claim_counts else 0
    elif to == S.queued:
        started = heartbeat = None
    else:
        finished = AT
    return to, started, finished, heartbeat, attempts


def test_the_table_covers_every_state_and_allows_exactly_the_registrys_moves() -> None:
    assert set(JOB_TRANSITIONS) == set(JobState)
    assert {(a, b) for a, tos in JOB_TRANSITIONS.items() for b in tos} == ALLOWED


@pytest.mark.parametrize(("before", "to"), PAIRS, ids=str)
def test_every_transition_is_applied_or_refused_unchanged(
    world: World, job_id: uuid.UUID, before: JobState, to: JobState
) -> None:
    unchanged = arrange(world, job_id, before)
    with unit_of_work(world.env.sessions.write) as session:
        row = session.get_one(Job, job_id)
        if (before, to) in ALLOWED:
            transition(row, to, at=AT)
        else:
            with pytest.raises(JobStateConflict) as refused:
                transition(row, to, at=AT)
            assert (refused.value.code, refused.value.status_code) == ("job_state_conflict", 409)
            assert (refused.value.context["state"], refused.value.context["to"]) == (before, to)
    if (before, to) in ALLOWED:
        assert stored(world, job_id) == expected(before, to, claim_counts=False)
    else:
        assert stored(world, job_id) == unchanged


@pytest.mark.parametrize(("before", "to"), PAIRS, ids=str)
def test_every_compare_and_set_is_applied_or_refused_unchanged(
    world: World, job_id: uuid.UUID, before: JobState, to: JobState
) -> None:
    unchanged = arrange(world, job_id, before)
    with unit_of_work(world.env.sessions.write) as session:
        if (before, to) in ALLOWED:
            assert compare_and_set(session, job_id, seen=before, to=to, at=AT)
        else:
            with pytest.raises(JobStateConflict):
                compare_and_set(session, job_id, seen=before, to=to, at=AT)
    if (before, to) in ALLOWED:
        assert stored(world, job_id) == expected(before, to, claim_counts=True)
    else:
        assert stored(world, job_id) == unchanged


def test_a_compare_and_set_from_a_state_the_job_left_changes_nothing(
    world: World, job_id: uuid.UUID
) -> None:
    """The claim a second worker makes on a job the first one already claimed."""
    unchanged = arrange(world, job_id, S.running)
    with unit_of_work(world.env.sessions.write) as session:
        assert not compare_and_set(session, job_id, seen=S.queued, to=S.running, at=AT)
    assert stored(world, job_id) == unchanged


def test_an_unknown_stored_state_allows_no_move(world: World, job_id: uuid.UUID) -> None:
    with unit_of_work(world.env.sessions.write) as session:
        row = session.get_one(Job, job_id)
        row.state = "mislaid"
        with pytest.raises(JobStateConflict):
            transition(row, S.running, at=AT)
        assert row.state == "mislaid"
        row.state = S.queued
