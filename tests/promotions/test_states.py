"""A promotion request's state machine, move by move: for every (from, to) pair of states,
``transition`` either applies the move (state, decision time and reason stored) or refuses it
with ``promotion_state_conflict`` and leaves the stored row as it was. On a real request row
(made through the API) in the real database."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from registry.db.session import unit_of_work
from registry.errors import PromotionStateConflict
from registry.promotions.models import PromotionRequest, PromotionState
from registry.promotions.states import PROMOTION_TRANSITIONS, initial_state, transition
from tests.deployments.world import World, build_world

S = PromotionState
# The moves the registry makes, written out here so that a change of the table is deliberate.
ALLOWED = {
    (S.blocked, S.rejected),
    (S.blocked, S.cancelled),
    (S.pending, S.completed),
    (S.pending, S.rolling_out),
    (S.pending, S.rejected),
    (S.pending, S.cancelled),
    (S.pending, S.expired),
    (S.rolling_out, S.completed),
    (S.rolling_out, S.rolled_back),
    (S.rolled_back, S.rolling_out),
}
PAIRS = list(itertools.product(PromotionState, PromotionState))
BEFORE = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
AT = datetime(2026, 6, 7, 8, 9, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def world(
    anon_client: TestClient, admin_token: str, tmp_path_factory: pytest.TempPathFactory
) -> World:
    return build_world(anon_client, admin_token, tmp_path_factory.mktemp("promotion-states"))


def stored(world: World, promotion_id: uuid.UUID) -> tuple[str, datetime | None, str | None]:
    with unit_of_work(world.sessions.read) as session:
        row = session.get_one(PromotionRequest, promotion_id)
        return row.state, row.decided_at, row.decision_reason


def arrange(world: World, state: PromotionState) -> None:
    """The world's request in ``state``, decided at ``BEFORE`` for reason "before" (written
    directly: the test's arrangement, not a move of the machine)."""
    with unit_of_work(world.sessions.write) as session:
        row = session.get_one(PromotionRequest, world.promotion_id)
        row.state = state
        row.decided_at = BEFORE
        row.decision_reason = "before"


def test_the_table_covers_every_state_and_allows_exactly_the_registrys_moves() -> None:
    assert set(PROMOTION_TRANSITIONS) == set(PromotionState)
    assert {(a, b) for a, tos in PROMOTION_TRANSITIONS.items() for b in tos} == ALLOWED


def test_a_new_request_is_pending_or_blocked() -> None:
    assert (initial_state(True), initial_state(False)) == (S.pending, S.blocked)


@pytest.mark.parametrize(("before", "to"), PAIRS, ids=lambda s: str(s))
def test_every_move_is_applied_or_refused_unchanged(
    world: World, before: PromotionState, to: PromotionState
) -> None:
    arrange(world, before)
    with unit_of_work(world.sessions.write) as session:
        row = session.get_one(PromotionRequest, world.promotion_id)
        if (before, to) in ALLOWED:
            transition(row, to, at=AT, reason="moved")
        else:
            with pytest.raises(PromotionStateConflict) as refused:
                transition(row, to, at=AT, reason="moved")
            assert refused.value.code == "promotion_state_conflict"
            assert refused.value.status_code == 409
            assert refused.value.context["state"] == before
            assert refused.value.context["to"] == to
    if (before, to) in ALLOWED:
        assert stored(world, world.promotion_id) == (to, AT, "moved")
    else:
        assert stored(world, world.promotion_id) == (before, BEFORE, "before")


def test_a_move_without_a_time_or_reason_keeps_the_stored_ones(world: World) -> None:
    """A rolled-back promotion whose canary a rollback restores rolls out again, still decided
    when it was first decided."""
    arrange(world, S.rolled_back)
    with unit_of_work(world.sessions.write) as session:
        transition(session.get_one(PromotionRequest, world.promotion_id), S.rolling_out)
    assert stored(world, world.promotion_id) == (S.rolling_out, BEFORE, "before")


def test_an_unknown_stored_state_allows_no_move(world: World) -> None:
    with unit_of_work(world.sessions.write) as session:
        row = session.get_one(PromotionRequest, world.promotion_id)
        row.state = "mislaid"
        with pytest.raises(PromotionStateConflict):
            transition(row, S.pending, at=AT)
        assert row.state == "mislaid"
        row.state = S.pending
