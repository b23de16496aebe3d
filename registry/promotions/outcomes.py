"""A promotion follows the rollout it started: when the rollout ends (completed, rolled back,
or superseded by a newer one) the promotion is completed or rolled back with it, and when a
rollback restores its canary it is rolling out again.

These are the deployment-side moves of ``registry.deployments.rollout_records`` with their
consequence for the promotion, in the same transaction; promotions (an approval starting a
canary) and ``registry.traffic`` (manual moves, the controller) call them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from registry.deployments import rollout_records
from registry.deployments.models import Deployment, DeploymentRevision, RolloutState
from registry.promotions.models import PromotionRequest, PromotionState
from registry.promotions.states import transition


def end_rollout(
    session: Session,
    deployment_id: uuid.UUID,
    state: RolloutState,
    promotion_state: PromotionState,
) -> None:
    """End the deployment's running rollout (if any) in ``state``; the promotion rolling it
    out becomes ``promotion_state`` (decided now, unless decided already). Flushes."""
    now = datetime.now(UTC)
    rollout = rollout_records.end_running(session, deployment_id, state, at=now)
    if rollout is None:
        return
    if rollout.promotion_id is not None:
        promotion = session.get(PromotionRequest, rollout.promotion_id)
        if promotion is not None and promotion.state == PromotionState.rolling_out:
            transition(promotion, promotion_state, at=promotion.decided_at or now)
    session.flush()


def resume_rollout(session: Session, dep: Deployment, revision: DeploymentRevision) -> None:
    """``revision`` restored a candidate: the rollout that last ran it resumes, and its rolled
    back promotion is rolling out again. Flushes."""
    rollout = rollout_records.resume(session, dep, revision)
    if rollout is None:
        return
    if rollout.promotion_id is not None:
        promotion = session.get(PromotionRequest, rollout.promotion_id)
        if promotion is not None and promotion.state == PromotionState.rolled_back:
            transition(promotion, PromotionState.rolling_out)
    session.flush()
