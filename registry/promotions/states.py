"""The state machine of a promotion request: the table of the moves it allows and the one
function that moves it (like Prefect's orchestration rules).

A request is made ``pending`` (its gates pass, or an admin overrode them) or ``blocked``.
Enough approvals complete it (the version became stable at once) or start its rollout, which
completes or is rolled back (and resumes when a rollback restores its canary). A pending or
blocked request may be rejected or cancelled; a pending one expires when a new stable version
overtakes it (``registry.promotions.expiry``; its TTL running out is computed, never stored).

``transition`` is the only writer of ``state``, ``decided_at`` and ``decision_reason``
(``tests/test_layering.py`` refuses a write anywhere else). A move the table does not allow
raises ``promotion_state_conflict`` (409) and changes nothing; the services check the state
the caller may act on first (``registry.promotions.service``), so this is the backstop.
"""

from __future__ import annotations

from datetime import datetime

from registry.errors import PromotionStateConflict
from registry.promotions.models import PromotionRequest, PromotionState

PROMOTION_TRANSITIONS: dict[PromotionState, frozenset[PromotionState]] = {
    PromotionState.blocked: frozenset({PromotionState.rejected, PromotionState.cancelled}),
    PromotionState.pending: frozenset(
        {
            PromotionState.completed,  # approved: the version became stable at once
            PromotionState.rolling_out,  # approved: its canary started
            PromotionState.rejected,
            PromotionState.cancelled,
            PromotionState.expired,  # a new stable version overtook it
        }
    ),
    PromotionState.approved: frozenset(),  # declared, never entered
    PromotionState.rejected: frozenset(),
    PromotionState.expired: frozenset(),
    PromotionState.cancelled: frozenset(),
    PromotionState.rolling_out: frozenset({PromotionState.completed, PromotionState.rolled_back}),
    PromotionState.completed: frozenset(),
    # A rollback to a revision that restores the candidate's canary resumes the rollout.
    PromotionState.rolled_back: frozenset({PromotionState.rolling_out}),
}


def initial_state(approvable: bool) -> PromotionState:
    """A new request's state: ``pending`` when its gates pass (or an admin overrode them),
    else ``blocked``."""
    return PromotionState.pending if approvable else PromotionState.blocked


def transition(
    row: PromotionRequest,
    to: PromotionState,
    *,
    at: datetime | None = None,
    reason: str | None = None,
) -> None:
    """Move ``row`` to ``to``; ``at`` (when given) becomes its ``decided_at`` and ``reason``
    (when given) its ``decision_reason``. ``promotion_state_conflict`` when
    ``PROMOTION_TRANSITIONS`` does not allow the move. Flushes nothing."""
    try:
        allowed = PROMOTION_TRANSITIONS[PromotionState(row.state)]
    except ValueError:
        allowed = frozenset()
    if to not in allowed:
        raise PromotionStateConflict(
            f"the request is {row.state} and cannot become {to}",
            context={"id": str(row.id), "state": row.state, "to": str(to)},
        )
    row.state = to
    if at is not None:
        row.decided_at = at
    if reason is not None:
        row.decision_reason = reason
