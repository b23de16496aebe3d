"""Moving a deployment's traffic: manual steps and rollbacks, and the controller's steps,
completions and automatic rollbacks.

Every move is one new immutable revision appended under the deployment's row lock, followed
by its consequences for promotions in the same transaction: the requests it overtakes expire,
and the promotion behind an ended (or resumed) rollout follows it. Every manual move is
compare-and-set: the caller names the revision it expects (``If-Match`` /
``expected_revision``); a stale one is ``412 precondition_failed``, a missing one
``428 precondition_required``, so two operators cannot both win.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from registry.access.actor import Actor
from registry.canary.plans import Plan
from registry.catalog.models import AdapterVersion, VersionState
from registry.deployments import rollout_records
from registry.deployments import service as deployments
from registry.deployments.models import Deployment, DeploymentRevision, RolloutState
from registry.deployments.states import RevisionReason
from registry.errors import (
    InvalidTransition,
    PreconditionFailed,
    PreconditionRequired,
    VersionVerifying,
)
from registry.promotions.expiry import append_revision
from registry.promotions.models import PromotionState
from registry.promotions.outcomes import end_rollout, resume_rollout

FULL_SHARE = rollout_records.FULL_SHARE


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
    rollout = rollout_records.running(session, dep.id)
    if share_bp == FULL_SHARE:
        _complete(session, actor, dep, current, reason=RevisionReason.manual_rollout)
    else:
        _append(
            session,
            actor,
            dep,
            current,
            share_bp=share_bp,
            reason=RevisionReason.manual_rollout,
            detail=f"manual step to {share_bp} bp",
        )
        if rollout is not None:
            rollout_records.restart_step(rollout, share_bp, at=datetime.now(UTC))
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
    target, detail = _rollback_target(session, dep, current, to_revision)
    stable, candidate = target.stable_version_id, target.candidate_version_id
    if to_revision is None:
        candidate = None
    if stable is None:
        raise InvalidTransition("nothing to roll back to", context={"deployment": name})
    for version_id in (stable, candidate):
        _require_servable(session, version_id)
    end_rollout(session, dep.id, RolloutState.rolled_back, PromotionState.rolled_back)
    revision = append_revision(
        session,
        actor=actor,
        deployment=dep,
        current=current,
        stable_version_id=stable,
        candidate_version_id=candidate,
        share_bp=target.candidate_share_bp if candidate is not None else 0,
        salt=target.salt,
        reason=RevisionReason.manual_rollback,
        detail=detail,
        promotion_id=target.promotion_id if to_revision is not None and candidate else None,
    )
    if candidate is not None:
        resume_rollout(session, dep, revision)
    return deployments.view(session, dep)


def automatic_rollback(
    session: Session, *, deployment: Deployment, detail: str
) -> DeploymentRevision:
    """The controller's rollback: candidate dropped, stable unchanged, rollout ended."""
    current = deployments.current_revision(session, deployment)
    end_rollout(session, deployment.id, RolloutState.rolled_back, PromotionState.rolled_back)
    return _append(
        session,
        None,
        deployment,
        current,
        share_bp=0,
        reason=RevisionReason.automatic_rollback,
        detail=detail,
        candidate=False,
        promotion=False,
    )


def complete(session: Session, *, deployment: Deployment, reason: str) -> DeploymentRevision:
    """The candidate passed every step: it becomes the stable version."""
    current = deployments.current_revision(session, deployment)
    return _complete(session, None, deployment, current, reason=reason)


def advance(
    session: Session,
    *,
    deployment: Deployment,
    current: DeploymentRevision,
    plan: Plan,
    step_index: int,
) -> DeploymentRevision:
    """The controller's step: the candidate's share becomes step ``step_index``'s."""
    return _append(
        session,
        None,
        deployment,
        current,
        share_bp=plan.steps[step_index].share_bp,
        reason=RevisionReason.step,
        detail=f"plan {plan.name} step {step_index + 1}/{len(plan.steps)}",
    )


def _complete(
    session: Session,
    actor: Actor | None,
    dep: Deployment,
    current: DeploymentRevision,
    *,
    reason: str,
) -> DeploymentRevision:
    end_rollout(session, dep.id, RolloutState.completed, PromotionState.completed)
    revision = append_revision(
        session,
        actor=actor,
        deployment=dep,
        current=current,
        stable_version_id=current.candidate_version_id,
        candidate_version_id=None,
        share_bp=0,
        salt=current.salt,
        reason=reason,
        detail="rollout completed: candidate is now stable",
        promotion_id=current.promotion_id,
    )
    return revision


def _append(
    session: Session,
    actor: Actor | None,
    dep: Deployment,
    current: DeploymentRevision,
    *,
    share_bp: int,
    reason: str,
    detail: str,
    candidate: bool = True,
    promotion: bool = True,
) -> DeploymentRevision:
    """A new split of ``current``'s versions under its salt (without its candidate, or
    without its promotion, when told); the requests it overtakes expire."""
    revision = append_revision(
        session,
        actor=actor,
        deployment=dep,
        current=current,
        stable_version_id=current.stable_version_id,
        candidate_version_id=current.candidate_version_id if candidate else None,
        share_bp=share_bp,
        salt=current.salt,
        reason=reason,
        detail=detail,
        promotion_id=current.promotion_id if promotion else None,
    )
    return revision


def _rollback_target(
    session: Session, dep: Deployment, current: DeploymentRevision, to_revision: int | None
) -> tuple[DeploymentRevision, str]:
    """The revision whose versions (and, for ``to_revision``, split) a rollback restores,
    and the detail it is recorded with."""
    if to_revision is not None:
        return _revision(session, dep, to_revision), f"rollback to revision {to_revision}"
    if current.candidate_version_id is not None:
        return current, "rollback: candidate dropped"
    previous = deployments.previous_stable(session, current)
    if previous is None:
        raise InvalidTransition(
            "no earlier stable version to roll back to", context={"deployment": dep.name}
        )
    return previous, f"rollback to the stable version of revision {previous.revision}"


def _revision(session: Session, dep: Deployment, number: int) -> DeploymentRevision:
    found = deployments.revision(session, dep, number)
    if found is None or number >= dep.current_revision:
        raise InvalidTransition(
            "to_revision must be an earlier revision of this deployment",
            context={"to_revision": number, "revision": dep.current_revision},
        )
    return found


def _require_servable(session: Session, version_id: uuid.UUID | None) -> None:
    if version_id is None:
        return
    version = session.get_one(AdapterVersion, version_id)
    if version.state == VersionState.verifying:
        raise VersionVerifying(
            f"version v{version.version} is still being verified and cannot serve",
            context={"version": version.version, "state": version.state},
        )
    if version.state != VersionState.validated:
        raise InvalidTransition(
            f"version v{version.version} is {version.state} and cannot serve",
            context={"version": version.version, "state": version.state},
        )
