"""The state machines of deployments, move by move, on real rows in the real database:

- a rollout: for every (from, to) pair of states, ``transition_rollout`` either applies the
  move or refuses it with ``invalid_transition`` and leaves the stored row as it was;
- a deployment's phase (what its newest revision serves): for every (from, to) pair,
  ``append_revision`` (through ``transition_revision``) either appends the next revision or
  refuses with ``invalid_transition``, appending nothing and leaving ``current_revision``.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from registry.db.session import unit_of_work
from registry.deployments import service as deployments
from registry.deployments.models import Deployment, DeploymentRevision, Rollout, RolloutState
from registry.deployments.states import (
    REVISION_TRANSITIONS,
    ROLLOUT_TRANSITIONS,
    Phase,
    RevisionReason,
    phase_of,
    transition_rollout,
)
from registry.errors import InvalidTransition
from tests.deployments.world import World, build_world

R = RolloutState
ROLLOUT_MOVES = {(R.running, R.completed), (R.running, R.rolled_back), (R.running, R.superseded)}
PHASE_MOVES = {
    (Phase.none, Phase.empty),
    (Phase.empty, Phase.stable),
    (Phase.stable, Phase.stable),
    (Phase.stable, Phase.canary),
    (Phase.canary, Phase.stable),
    (Phase.canary, Phase.canary),
}
# "none" (no revision yet) is where a deployment starts; no revision can lead back to it.
TARGETS = [Phase.empty, Phase.stable, Phase.canary]
BEFORE = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
AT = datetime(2026, 6, 7, 8, 9, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def world(
    anon_client: TestClient, admin_token: str, tmp_path_factory: pytest.TempPathFactory
) -> World:
    return build_world(anon_client, admin_token, tmp_path_factory.mktemp("deployment-states"))


def test_the_tables_cover_every_state_and_allow_exactly_the_registrys_moves() -> None:
    assert set(ROLLOUT_TRANSITIONS) == set(RolloutState)
    assert {(a, b) for a, tos in ROLLOUT_TRANSITIONS.items() for b in tos} == ROLLOUT_MOVES
    assert set(REVISION_TRANSITIONS) == set(Phase)
    assert {(a, b) for a, tos in REVISION_TRANSITIONS.items() for b in tos} == PHASE_MOVES


# --- rollouts ---------------------------------------------------------------------------------


def new_rollout(world: World, state: RolloutState) -> uuid.UUID:
    with unit_of_work(world.sessions.write) as session:
        rollout = Rollout(
            deployment_id=world.deployment_id,
            candidate_version_id=world.v2,
            plan_name="p",
            plan={"steps": [{"share": 100, "min_dwell_s": 0}]},
            salt="0" * 32,
            state=state,
            updated_at=BEFORE,
        )
        session.add(rollout)
        session.flush()
        return rollout.id


def stored_rollout(world: World, rollout_id: uuid.UUID) -> tuple[str, datetime]:
    with unit_of_work(world.sessions.read) as session:
        rollout = session.get_one(Rollout, rollout_id)
        return rollout.state, rollout.updated_at


@pytest.mark.parametrize(
    ("before", "to"), list(itertools.product(RolloutState, RolloutState)), ids=str
)
def test_every_rollout_move_is_applied_or_refused_unchanged(
    world: World, before: RolloutState, to: RolloutState
) -> None:
    rollout_id = new_rollout(world, before)
    with unit_of_work(world.sessions.write) as session:
        rollout = session.get_one(Rollout, rollout_id)
        if (before, to) in ROLLOUT_MOVES:
            transition_rollout(rollout, to, at=AT)
        else:
            with pytest.raises(InvalidTransition) as refused:
                transition_rollout(rollout, to, at=AT)
            assert (refused.value.code, refused.value.status_code) == ("invalid_transition", 409)
    expected = (to, AT) if (before, to) in ROLLOUT_MOVES else (before, BEFORE)
    assert stored_rollout(world, rollout_id) == expected


# --- revisions --------------------------------------------------------------------------------


def versions(world: World, phase: Phase) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """(stable, candidate) of a revision in ``phase``."""
    return {
        Phase.empty: (None, None),
        Phase.stable: (world.v1, None),
        Phase.canary: (world.v1, world.v2),
    }[phase]


def deployment_in(world: World, phase: Phase) -> uuid.UUID:
    """A new deployment whose current revision is in ``phase`` (none: no revision yet),
    written directly (the test's arrangement)."""
    deployment = world.new_deployment()
    with unit_of_work(world.sessions.write) as session:
        session.add(deployment)
        session.flush()
        if phase is not Phase.none:
            stable, candidate = versions(world, phase)
            deployment.current_revision = 1
            session.add(
                DeploymentRevision(
                    deployment_id=deployment.id,
                    revision=1,
                    stable_version_id=stable,
                    candidate_version_id=candidate,
                    candidate_share_bp=1000 if candidate else 0,
                    salt="1" * 32,
                    reason=RevisionReason.created,
                )
            )
    return deployment.id


def stored_revisions(world: World, deployment_id: uuid.UUID) -> tuple[int, int]:
    """(current_revision, how many revisions are stored)."""
    with unit_of_work(world.sessions.read) as session:
        current = session.get_one(Deployment, deployment_id).current_revision
        count = session.scalar(
            select(func.count())
            .select_from(DeploymentRevision)
            .where(DeploymentRevision.deployment_id == deployment_id)
        )
        return current, count or 0


def append(
    world: World,
    deployment_id: uuid.UUID,
    stable: uuid.UUID | None,
    candidate: uuid.UUID | None,
    *,
    current_number: int | None = None,
) -> InvalidTransition | None:
    """Append a revision with these versions after the current one (or after revision
    ``current_number``) and commit, whether it was refused or not: a refused move must leave
    nothing behind to commit. Returns the refusal."""
    with unit_of_work(world.sessions.write) as session:
        dep = deployments.lock_deployment(session, deployment_id)
        number = dep.current_revision if current_number is None else current_number
        current = deployments.revision(session, dep, number) if number else None
        was = dep.current_revision
        try:
            deployments.append_revision(
                session,
                actor=None,
                deployment=dep,
                current=current,
                stable_version_id=stable,
                candidate_version_id=candidate,
                share_bp=1000 if candidate else 0,
                reason=RevisionReason.step,
            )
        except InvalidTransition as refused:
            assert dep.current_revision == was
            return refused
    return None


@pytest.mark.parametrize(("before", "to"), list(itertools.product(Phase, TARGETS)), ids=str)
def test_every_phase_move_appends_a_revision_or_is_refused_unchanged(
    world: World, before: Phase, to: Phase
) -> None:
    deployment_id = deployment_in(world, before)
    was = stored_revisions(world, deployment_id)
    refused = append(world, deployment_id, *versions(world, to))
    if (before, to) in PHASE_MOVES:
        assert refused is None
        assert stored_revisions(world, deployment_id) == (was[0] + 1, was[1] + 1)
        with unit_of_work(world.sessions.read) as session:
            dep = session.get_one(Deployment, deployment_id)
            now = deployments.current_revision(session, dep)
            assert phase_of(now.stable_version_id, now.candidate_version_id) == to
    else:
        assert refused is not None
        assert (refused.code, refused.status_code) == ("invalid_transition", 409)
        assert refused.context["phase"] == before
        assert stored_revisions(world, deployment_id) == was


def test_a_candidate_without_a_stable_version_is_refused(world: World) -> None:
    deployment_id = deployment_in(world, Phase.stable)
    refused = append(world, deployment_id, None, world.v2)
    assert refused is not None
    assert refused.code == "invalid_transition"
    assert stored_revisions(world, deployment_id) == (1, 1)


def test_a_move_from_a_revision_that_is_not_the_current_one_is_refused(world: World) -> None:
    """Two writers that read the same current revision: the second cannot append after it."""
    deployment_id = deployment_in(world, Phase.stable)
    assert append(world, deployment_id, world.v1, world.v2) is None
    refused = append(world, deployment_id, world.v2, None, current_number=1)
    assert refused is not None
    assert refused.code == "invalid_transition"
    assert stored_revisions(world, deployment_id) == (2, 2)
