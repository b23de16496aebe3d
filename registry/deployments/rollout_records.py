"""Rollout records (table ``rollouts``: a candidate's progress through its plan) and the
controller's decisions: starting one with the plan's first revision, ending the running one,
resuming one when a rollback restores its candidate, moving one to the step of a share set by
hand, and a page of decisions.

Only the deployment's side. What the end or the resumption of a rollout means for the
promotion that started it is ``registry.promotions.outcomes``' (above this package), and so is
expiring the requests a new revision overtakes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.access.actor import Actor
from registry.canary.hashing import MAX_SHARE_BP, new_salt
from registry.canary.plans import Plan, plan_from_mapping
from registry.deployments import service as deployments
from registry.deployments.models import (
    Deployment,
    DeploymentRevision,
    Rollout,
    RolloutDecision,
    RolloutState,
)
from registry.deployments.repository import RolloutRepository
from registry.deployments.states import RevisionReason, transition_rollout

FULL_SHARE = MAX_SHARE_BP  # 10000 bp: the candidate serves everything


def start(
    session: Session,
    *,
    actor: Actor | None,
    deployment: Deployment,
    current: DeploymentRevision,
    promotion_id: uuid.UUID,
    candidate_version_id: uuid.UUID,
    plan: Plan,
) -> DeploymentRevision:
    """The candidate takes the plan's first step, under a new salt (arms are decorrelated from
    earlier rollouts), and a rollout record follows its progress. The running rollout, if any,
    was ended (superseded) by the caller."""
    salt = new_salt()
    revision = deployments.append_revision(
        session,
        actor=actor,
        deployment=deployment,
        current=current,
        stable_version_id=current.stable_version_id,
        candidate_version_id=candidate_version_id,
        share_bp=plan.steps[0].share_bp,
        salt=salt,
        reason=RevisionReason.promotion,
        detail=f"promotion {promotion_id}: plan {plan.name} step 1/{len(plan.steps)}",
        promotion_id=promotion_id,
    )
    session.add(
        Rollout(
            deployment_id=deployment.id,
            promotion_id=promotion_id,
            candidate_version_id=candidate_version_id,
            plan_name=plan.name,
            plan=plan.to_dict(),
            salt=salt,
            step_index=0,
            step_started_at=revision.effective_at,
            failures=0,
            state=RolloutState.running,
            updated_at=revision.effective_at,
        )
    )
    session.flush()
    return revision


def running(session: Session, deployment_id: uuid.UUID) -> Rollout | None:
    return RolloutRepository(session).running(deployment_id)


def running_ids(session: Session) -> list[uuid.UUID]:
    """Every running rollout, oldest first (the controller's round)."""
    return RolloutRepository(session).running_ids()


def end_running(
    session: Session, deployment_id: uuid.UUID, state: RolloutState, *, at: datetime
) -> Rollout | None:
    """End the deployment's running rollout (if any) in ``state``; return it. Flushes nothing."""
    rollout = running(session, deployment_id)
    if rollout is not None:
        transition_rollout(rollout, state, at=at)
    return rollout


def resume(session: Session, dep: Deployment, revision: DeploymentRevision) -> Rollout | None:
    """A restored canary is watched again: the rollout that last ran ``revision``'s candidate
    resumes as a new record (same plan and promotion) at the step of the restored share; None
    for a candidate set outside any plan (manual steps only). Flushes nothing."""
    previous = RolloutRepository(session).latest_for(dep.id, revision.candidate_version_id)
    if previous is None:
        return None
    resumed = Rollout(
        deployment_id=dep.id,
        promotion_id=previous.promotion_id,
        candidate_version_id=previous.candidate_version_id,
        plan_name=previous.plan_name,
        plan=previous.plan,
        salt=revision.salt,
        step_index=step_at(previous.plan, revision.candidate_share_bp),
        step_started_at=revision.effective_at,
        failures=0,
        state=RolloutState.running,
        updated_at=revision.effective_at,
    )
    session.add(resumed)
    return resumed


def restart_step(rollout: Rollout, share_bp: int, *, at: datetime) -> None:
    """A share set by hand: the rollout continues from the plan's step of that share, its
    dwell and failure count starting again."""
    rollout.step_index = step_at(rollout.plan, share_bp)
    rollout.step_started_at = at
    rollout.failures = 0
    rollout.updated_at = at


def step_at(plan: Any, share_bp: int) -> int:
    """The last step of the stored ``plan`` whose share is at most ``share_bp`` (the first
    when none is)."""
    shares = [round(step["share"] * 100) for step in plan["steps"]]
    return max([i for i, share in enumerate(shares) if share <= share_bp] or [0])


def decisions(
    session: Session,
    *,
    actor: Actor,
    name: str,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[RolloutDecision]:
    """A page of the controller's decisions on ``name``, newest first (keyset: ``after`` is the
    ``(decided_at, id)`` of the previous page's last decision)."""
    dep = deployments.get_deployment(session, actor=actor, name=name)
    return RolloutRepository(session).decisions_page(dep.id, after=after, limit=limit)


def rollout_of(session: Session, revision: DeploymentRevision) -> Rollout | None:
    """The rollout that put ``revision``'s candidate on its split (same deployment, candidate
    and salt; the newest if several); None when no rollout did (a split set by hand)."""
    if revision.candidate_version_id is None:
        return None
    stmt = (
        select(Rollout)
        .where(
            Rollout.deployment_id == revision.deployment_id,
            Rollout.candidate_version_id == revision.candidate_version_id,
            Rollout.salt == revision.salt,
        )
        .order_by(Rollout.created_at.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def plan_of(session: Session, revision: DeploymentRevision) -> Plan | None:
    """The plan of :func:`rollout_of` (as stored with the rollout), or None."""
    rollout = rollout_of(session, revision)
    if rollout is None:
        return None
    return plan_from_mapping(rollout.plan_name, rollout.plan, stored=True)
