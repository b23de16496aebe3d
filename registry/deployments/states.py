"""The state machines of deployments, each moved by one function with an explicit table of the
moves it allows (like Prefect's orchestration rules):

- a rollout (``rollouts.state``) runs until it completes, is rolled back or is superseded by a
  newer rollout of the same deployment: ``transition_rollout`` is the only writer of
  ``Rollout.state``;
- a deployment serves what its newest revision says: nothing yet (no stable version), its
  stable version alone, or a canary split between a candidate and the stable version.
  ``transition_revision`` numbers the next revision after checking that move, and is the only
  writer of ``Deployment.current_revision`` (``registry.deployments.service.append_revision``
  calls it for every revision).

A move the table does not allow raises ``invalid_transition`` (409) and changes nothing.
``tests/test_layering.py`` refuses a write of these attributes anywhere else.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from registry.deployments.models import Deployment, DeploymentRevision, Rollout, RolloutState
from registry.errors import InvalidTransition


class RevisionReason(StrEnum):
    """Why a revision was appended (stored with it)."""

    created = "created"
    promotion = "promotion"
    step = "step"
    manual_rollout = "manual_rollout"
    manual_rollback = "manual_rollback"
    automatic_rollback = "automatic_rollback"


class Phase(StrEnum):
    """What a deployment serves, as its newest revision says."""

    none = "none"  # no revision yet: the deployment is being created
    empty = "empty"  # no stable version yet: nothing is served
    stable = "stable"  # the stable version serves all traffic
    canary = "canary"  # a candidate serves its share, the stable version the rest


ROLLOUT_TRANSITIONS: dict[RolloutState, frozenset[RolloutState]] = {
    RolloutState.running: frozenset(
        {RolloutState.completed, RolloutState.rolled_back, RolloutState.superseded}
    ),
    RolloutState.completed: frozenset(),
    RolloutState.rolled_back: frozenset(),  # a restored canary runs as a new rollout
    RolloutState.superseded: frozenset(),
}

REVISION_TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.none: frozenset({Phase.empty}),  # created
    Phase.empty: frozenset({Phase.stable}),  # the first promotion
    # A promotion without a canary, a rollback to an earlier stable version; a canary starts.
    Phase.stable: frozenset({Phase.stable, Phase.canary}),
    # Completed or rolled back; a step, a manual share, a newer canary, a restored split.
    Phase.canary: frozenset({Phase.stable, Phase.canary}),
}


def transition_rollout(rollout: Rollout, to: RolloutState, *, at: datetime) -> None:
    """Move ``rollout`` to ``to`` at ``at`` (its ``updated_at``); ``invalid_transition``
    when ``ROLLOUT_TRANSITIONS`` does not allow it. Flushes nothing."""
    state = _rollout_state(rollout.state)
    if state is None or to not in ROLLOUT_TRANSITIONS[state]:
        raise InvalidTransition(
            f"a {rollout.state} rollout cannot become {to}",
            context={"rollout": str(rollout.id), "state": rollout.state, "to": str(to)},
        )
    rollout.state = to
    rollout.updated_at = at


def phase_of(stable_version_id: uuid.UUID | None, candidate_version_id: uuid.UUID | None) -> Phase:
    """The phase of a revision with these versions (``invalid_transition`` for a candidate
    without a stable version to split with)."""
    if candidate_version_id is not None:
        if stable_version_id is None:
            raise InvalidTransition("a candidate needs a stable version to split traffic with")
        return Phase.canary
    return Phase.empty if stable_version_id is None else Phase.stable


def transition_revision(
    deployment: Deployment,
    current: DeploymentRevision | None,
    *,
    stable_version_id: uuid.UUID | None,
    candidate_version_id: uuid.UUID | None,
) -> int:
    """Number the revision that follows ``current`` (the deployment's current revision, None
    while it is created) with these versions, and make it the deployment's current one; return
    its number. ``invalid_transition`` when ``REVISION_TRANSITIONS`` does not allow the move
    or ``current`` is not the deployment's current revision. The caller holds the deployment's
    row lock (or created it)."""
    before = (
        Phase.none
        if current is None
        else phase_of(current.stable_version_id, current.candidate_version_id)
    )
    after = phase_of(stable_version_id, candidate_version_id)
    context = {"deployment": deployment.name, "phase": str(before), "to": str(after)}
    if (0 if current is None else current.revision) != deployment.current_revision:
        raise InvalidTransition(
            "that is not the deployment's current revision",
            context={**context, "revision": deployment.current_revision},
        )
    if after not in REVISION_TRANSITIONS[before]:
        raise InvalidTransition(f"a deployment cannot go from {before} to {after}", context=context)
    deployment.current_revision += 1
    return deployment.current_revision


def _rollout_state(value: str) -> RolloutState | None:
    try:
        return RolloutState(value)
    except ValueError:
        return None
