"""Moving a deployment's traffic: starting a canary, manual steps, rollbacks.

Every move is one new immutable revision appended under the deployment's row lock, and every
manual move is compare-and-set: the caller names the revision it expects (``If-Match`` /
``expected_revision``); a stale one is ``412 precondition_failed``, a missing one
``428 precondition_required``, so two operators cannot both win.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.access.actor import Actor
from registry.canary.hashing import new_salt
from registry.canary.plans import Plan
from registry.catalog.models import AdapterVersion, VersionState
from registry.db.keyset import newest_first_after
from registry.deployments import service as deployments
from registry.deployments.models import (
    Deployment,
    DeploymentRevision,
    RevisionReason,
    Rollout,
    RolloutDecision,
    RolloutState,
)
from registry.errors import InvalidTransition, PreconditionFailed, PreconditionRequired
from registry.promotions.models import PromotionRequest, PromotionState

FULL_SHARE = 10_000


def check_expected(deployment: Deployment, expected: int | None) -> None:
    """Compare-and-set on the deployment's current revision."""
    if expected is None:
        raise PreconditionRequired(
            "say which revision you expect (If-Match or expected_revision)",
            context={"deployment": deployment.name, "revision": deployment.current_revision},
        )
    if expected != deployment.current_revision:
        raise PreconditionFailed(
            "the deployment moved on since the revision you expect",
            context={
                "deployment": deployment.name,
                "expected": expected,
                "revision": deployment.current_revision,
            },
        )


def start_rollout(
    session: Session,
    *,
    actor: Actor | None,
    deployment: Deployment,
    promotion: PromotionRequest,
    plan: Plan,
) -> DeploymentRevision:
    """An approved promotion with a stable version already serving: the candidate takes the
    plan's first step, under a new salt (arms are decorrelated from earlier rollouts)."""
    current = deployments.current_revision(session, deployment)
    _supersede_running(session, deployment.id)
    salt = new_salt()
    revision = deployments.append_revision(
        session,
        actor=actor,
        deployment=deployment,
        stable_version_id=current.stable_version_id,
        candidate_version_id=promotion.adapter_version_id,
        share_bp=plan.steps[0].share_bp,
        salt=salt,
        reason=RevisionReason.promotion,
        detail=f"promotion {promotion.id}: plan {plan.name} step 1/{len(plan.steps)}",
        promotion_id=promotion.id,
    )
    session.add(
        Rollout(
            deployment_id=deployment.id,
            promotion_id=promotion.id,
            candidate_version_id=promotion.adapter_version_id,
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


def running_rollout(session: Session, deployment_id: uuid.UUID) -> Rollout | None:
    return session.scalars(
        select(Rollout)
        .where(Rollout.deployment_id == deployment_id, Rollout.state == RolloutState.running)
        .order_by(Rollout.created_at.desc())
        .limit(1)
    ).first()


def rollout_to_share(
    session: Session, *, actor: Actor, name: str, share_bp: int, expected: int | None
) -> deployments.DeploymentView:
    """Manual step: the candidate's share becomes ``share_bp`` (same salt, so no key moves
    back to stable when the share rises); 10000 completes the rollout (candidate → stable)."""
    if not 0 <= share_bp <= FULL_SHARE:
        raise InvalidTransition(
            "share_bp must be between 0 and 10000", context={"share_bp": share_bp}
        )
    dep = deployments.get_deployment(
        session, actor=actor, name=name, action="rollout", for_update=True
    )
    check_expected(dep, expected)
    current = deployments.current_revision(session, dep)
    if current.candidate_version_id is None:
        raise InvalidTransition(
            "no candidate is rolling out on this deployment", context={"deployment": name}
        )
    rollout = running_rollout(session, dep.id)
    if share_bp == FULL_SHARE:
        _complete(session, actor, dep, current, rollout, reason=RevisionReason.manual_rollout)
    else:
        deployments.append_revision(
            session,
            actor=actor,
            deployment=dep,
            stable_version_id=current.stable_version_id,
            candidate_version_id=current.candidate_version_id,
            share_bp=share_bp,
            salt=current.salt,
            reason=RevisionReason.manual_rollout,
            detail=f"manual step to {share_bp} bp",
            promotion_id=current.promotion_id,
        )
        if rollout is not None:
            steps = [round(s["share"] * 100) for s in rollout.plan["steps"]]
            rollout.step_index = max([i for i, s in enumerate(steps) if s <= share_bp] or [0])
            rollout.step_started_at = datetime.now(UTC)
            rollout.failures = 0
            rollout.updated_at = rollout.step_started_at
    return deployments.view(session, dep)


def rollback(
    session: Session, *, actor: Actor, name: str, expected: int | None, to_revision: int | None
) -> deployments.DeploymentView:
    """One command, one new revision: drop the candidate (or, with no candidate, return to the
    previous stable version), or restore revision ``to_revision``'s versions and split."""
    dep = deployments.get_deployment(
        session, actor=actor, name=name, action="rollback", for_update=True
    )
    check_expected(dep, expected)
    current = deployments.current_revision(session, dep)
    if to_revision is not None:
        target = _revision(session, dep, to_revision)
        stable, candidate, share, salt = (
            target.stable_version_id,
            target.candidate_version_id,
            target.candidate_share_bp,
            target.salt,
        )
        detail = f"rollback to revision {to_revision}"
    elif current.candidate_version_id is not None:
        stable, candidate, share, salt = current.stable_version_id, None, 0, current.salt
        detail = "rollback: candidate dropped"
    else:
        previous = _previous_stable(session, dep, current)
        stable, candidate, share, salt = previous.stable_version_id, None, 0, previous.salt
        detail = f"rollback to the stable version of revision {previous.revision}"
    if stable is None:
        raise InvalidTransition("nothing to roll back to", context={"deployment": name})
    for version_id in (stable, candidate):
        _require_servable(session, version_id)
    _end_rollout(session, dep.id, RolloutState.rolled_back, PromotionState.rolled_back)
    revision = deployments.append_revision(
        session,
        actor=actor,
        deployment=dep,
        stable_version_id=stable,
        candidate_version_id=candidate,
        share_bp=share if candidate is not None else 0,
        salt=salt,
        reason=RevisionReason.manual_rollback,
        detail=detail,
        promotion_id=target.promotion_id if to_revision is not None and candidate else None,
    )
    if candidate is not None:
        _resume_rollout(session, dep, revision)
    return deployments.view(session, dep)


def automatic_rollback(
    session: Session, *, deployment: Deployment, rollout: Rollout, detail: str
) -> DeploymentRevision:
    """The controller's rollback: candidate dropped, stable unchanged, rollout ended."""
    current = deployments.current_revision(session, deployment)
    _end_rollout(session, deployment.id, RolloutState.rolled_back, PromotionState.rolled_back)
    return deployments.append_revision(
        session,
        actor=None,
        deployment=deployment,
        stable_version_id=current.stable_version_id,
        candidate_version_id=None,
        share_bp=0,
        salt=current.salt,
        reason=RevisionReason.automatic_rollback,
        detail=detail,
    )


def complete(
    session: Session, *, deployment: Deployment, rollout: Rollout, reason: str
) -> DeploymentRevision:
    """The candidate passed every step: it becomes the stable version."""
    current = deployments.current_revision(session, deployment)
    return _complete(session, None, deployment, current, rollout, reason=reason)


def _complete(
    session: Session,
    actor: Actor | None,
    dep: Deployment,
    current: DeploymentRevision,
    rollout: Rollout | None,
    *,
    reason: str,
) -> DeploymentRevision:
    _end_rollout(session, dep.id, RolloutState.completed, PromotionState.completed)
    return deployments.append_revision(
        session,
        actor=actor,
        deployment=dep,
        stable_version_id=current.candidate_version_id,
        candidate_version_id=None,
        share_bp=0,
        salt=current.salt,
        reason=reason,
        detail="rollout completed: candidate is now stable",
        promotion_id=current.promotion_id,
    )


def _end_rollout(
    session: Session, deployment_id: uuid.UUID, state: str, promotion_state: str
) -> None:
    rollout = running_rollout(session, deployment_id)
    if rollout is None:
        return
    now = datetime.now(UTC)
    rollout.state = state
    rollout.updated_at = now
    if rollout.promotion_id is not None:
        promotion = session.get(PromotionRequest, rollout.promotion_id)
        if promotion is not None and promotion.state == PromotionState.rolling_out:
            promotion.state = promotion_state
            promotion.decided_at = promotion.decided_at or now
    session.flush()


def _resume_rollout(session: Session, dep: Deployment, revision: DeploymentRevision) -> None:
    """A restored canary is watched again: the rollout that last ran this candidate resumes
    (same plan and promotion) at the step matching the restored share."""
    previous = session.scalars(
        select(Rollout)
        .where(
            Rollout.deployment_id == dep.id,
            Rollout.candidate_version_id == revision.candidate_version_id,
        )
        .order_by(Rollout.created_at.desc())
        .limit(1)
    ).first()
    if previous is None:
        return  # a candidate set outside any plan: manual steps only
    shares = [round(step["share"] * 100) for step in previous.plan["steps"]]
    session.add(
        Rollout(
            deployment_id=dep.id,
            promotion_id=previous.promotion_id,
            candidate_version_id=previous.candidate_version_id,
            plan_name=previous.plan_name,
            plan=previous.plan,
            salt=revision.salt,
            step_index=max(
                [i for i, v in enumerate(shares) if v <= revision.candidate_share_bp] or [0]
            ),
            step_started_at=revision.effective_at,
            failures=0,
            state=RolloutState.running,
            updated_at=revision.effective_at,
        )
    )
    if previous.promotion_id is not None:
        promotion = session.get(PromotionRequest, previous.promotion_id)
        if promotion is not None and promotion.state == PromotionState.rolled_back:
            promotion.state = PromotionState.rolling_out
    session.flush()


def _supersede_running(session: Session, deployment_id: uuid.UUID) -> None:
    _end_rollout(session, deployment_id, RolloutState.superseded, PromotionState.rolled_back)


def _revision(session: Session, dep: Deployment, number: int) -> DeploymentRevision:
    found = session.scalars(
        select(DeploymentRevision).where(
            DeploymentRevision.deployment_id == dep.id, DeploymentRevision.revision == number
        )
    ).one_or_none()
    if found is None or number >= dep.current_revision:
        raise InvalidTransition(
            "to_revision must be an earlier revision of this deployment",
            context={"to_revision": number, "revision": dep.current_revision},
        )
    return found


def _previous_stable(
    session: Session, dep: Deployment, current: DeploymentRevision
) -> DeploymentRevision:
    """The newest earlier revision whose stable version differs from the current one."""
    found = session.scalars(
        select(DeploymentRevision)
        .where(
            DeploymentRevision.deployment_id == dep.id,
            DeploymentRevision.revision < current.revision,
            DeploymentRevision.stable_version_id.is_not(None),
            DeploymentRevision.stable_version_id != current.stable_version_id,
        )
        .order_by(DeploymentRevision.revision.desc())
        .limit(1)
    ).first()
    if found is None:
        raise InvalidTransition(
            "no earlier stable version to roll back to", context={"deployment": dep.name}
        )
    return found


def _require_servable(session: Session, version_id: uuid.UUID | None) -> None:
    if version_id is None:
        return
    version = session.get_one(AdapterVersion, version_id)
    if version.state != VersionState.validated:
        raise InvalidTransition(
            f"version v{version.version} is {version.state} and cannot serve",
            context={"version": version.version, "state": version.state},
        )


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
    stmt = (
        select(RolloutDecision)
        .join(Rollout, Rollout.id == RolloutDecision.rollout_id)
        .where(Rollout.deployment_id == dep.id)
        .order_by(RolloutDecision.decided_at.desc(), RolloutDecision.id.desc())
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(newest_first_after(RolloutDecision.decided_at, RolloutDecision.id, after))
    return list(session.scalars(stmt))
