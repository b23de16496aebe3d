"""Promotion requests: gates computed and stored at request time and computed again at every
approval, the rollout plan frozen with the request and bound by the approval, four-eyes
approvals, compare-and-set state moves, and the deployment revision an approved promotion
produces.

Separation of duties is enforced three times, so a bug in one layer fails closed: here in the
service (``separation_of_duties`` naming the rule), in the Cedar policy ``four-eyes-never-own``,
and by CHECK constraints on ``promotion_approvals`` (see ``registry.promotions.models``).

Lock order: an approval locks the deployment's row before the request's, like every change of
the deployment's stable version (which expires the requests it overtakes, see
``registry.promotions.expiry``), so the two never wait on each other in a cycle.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.access.actor import Actor, deployment_resource
from registry.access.policies import ActivePolicies
from registry.canary.plans import Plan
from registry.canary.plans import plan_digest as plan_digest_of
from registry.catalog.models import AdapterVersion
from registry.catalog.queries import VersionContext, resolve_version
from registry.deployments import service as deployments
from registry.deployments.models import Deployment, RevisionReason
from registry.errors import (
    BadRequest,
    Conflict,
    InvalidTransition,
    PromotionStateConflict,
    SeparationOfDuties,
)
from registry.policy.gates import gates_passed
from registry.promotions import gates as promotion_gates
from registry.promotions.expiry import require_same_stable
from registry.promotions.models import PromotionApproval, PromotionRequest, PromotionState
from registry.promotions.plans import bind_plan, plan_for_request
from registry.promotions.reads import PromotionView, effective_state, load, resource, view
from registry.traffic import moves

log = logging.getLogger("registry.promotions")

FOUR_EYES_POLICY = "four-eyes-never-own"
FOUR_EYES_CONSTRAINTS = (
    "ck_promotion_approvals_not_requester_nor_registrant",
    "ck_promotion_approvals_not_ci_identity_owner",
)


def request_promotion(
    session: Session,
    *,
    actor: Actor,
    policies: ActivePolicies,
    ref: str,
    deployment: str,
    ttl_s: int,
    reason: str | None = None,
    override_reason: str | None = None,
    plan: str | None = None,
    plan_spec: dict[str, Any] | None = None,
) -> PromotionView:
    """Compute and store the gates for making ``ref`` the deployment's stable version.

    Failing gates give a stored request in state ``blocked`` (with every failing gate listed);
    an admin may override them with a written reason (loudly audited). The rollout plan (named,
    or ``plan_spec`` sent with the request) must meet the policy's floor (``plan_below_floor``,
    422) and is stored in full with the request, never to change. Runs in the caller's
    transaction; flushes."""
    dep = deployments.get_deployment(
        session, actor=actor, name=deployment, action="request_promotion"
    )
    namespace = deployments.namespace_of(session, dep)
    ctx = resolve_version(session, ref=ref, actor=actor)
    _check_target(ctx, dep)
    current = deployments.current_revision(session, dep)
    if current.stable_version_id == ctx.version.id:
        raise InvalidTransition(
            "this version is already the deployment's stable version",
            context={"deployment": dep.name, "version": ctx.ref},
        )
    chosen = plan_for_request(policies.plans, name=plan, spec=plan_spec)
    cfg, results = promotion_gates.evaluate(
        session,
        policies,
        deployment=dep,
        namespace=namespace,
        version=ctx.version,
        stable_version_id=current.stable_version_id,
    )
    passed = gates_passed(results)
    overridden = False
    if override_reason is not None:
        if not override_reason.strip():
            raise BadRequest("an override needs a written reason")
        actor.require("override_gates", deployment_resource(dep.name, namespace))
        overridden = not passed
    row = PromotionRequest(
        id=uuid.uuid4(),
        deployment_id=dep.id,
        adapter_version_id=ctx.version.id,
        requested_by_id=actor.id,
        registered_by_id=ctx.version.registered_by_id,
        ci_actor=ctx.version.ci_actor,
        state=PromotionState.pending if passed or overridden else PromotionState.blocked,
        gates=[g.to_dict() for g in results],
        gates_passed=passed,
        policy_digest=policies.bundle.digest,
        required_approvals=cfg.approvals,
        plan_name=chosen.name,
        plan_spec=chosen.to_dict(),
        stable_version_id=current.stable_version_id,
        override_reason=override_reason if overridden else None,
        overridden_by_id=actor.id if overridden else None,
        reason=reason,
        expires_at=datetime.now(UTC) + timedelta(seconds=ttl_s),
    )
    session.add(row)
    session.flush()
    resource = f"promotion:{row.id}"
    actor.audit(
        session,
        "promotion.request",
        resource,
        after={
            "deployment": dep.name,
            "version": ctx.ref,
            "digest": ctx.version.digest,
            "state": row.state,
            "failed_gates": [g.name for g in results if not g.passed],
            "policy_digest": row.policy_digest,
            "plan": chosen.name,
            "plan_digest": plan_digest_of(chosen),
        },
    )
    if overridden:
        log.warning(
            "GATES OVERRIDDEN by %s for %s -> %s: %s",
            actor.name,
            ctx.ref,
            dep.name,
            override_reason,
        )
        actor.audit(
            session,
            "promotion.gates_overridden",
            resource,
            after={
                "override_reason": override_reason,
                "failed_gates": [g.to_dict() for g in results if not g.passed],
            },
        )
    if row.state == PromotionState.pending and row.required_approvals == 0:
        # gates.yaml may waive approvals for a target
        _promote(session, actor, row, _lock_deployment(session, row.deployment_id), chosen)
    return view(session, row)


def approve(
    session: Session,
    *,
    actor: Actor,
    policies: ActivePolicies,
    promotion_id: uuid.UUID,
    comment: str = "",
    plan_digest: str | None = None,
) -> PromotionView:
    """Approve a pending request; with enough distinct approvals the version becomes the
    deployment's stable version (one new revision) or starts its canary.

    Compare-and-set on the request's state, under the deployment's and then the request's row
    lock. Refused with ``stable_changed`` (409) when the deployment's stable version is no
    longer the one the request was evaluated against (the request is expired), with
    ``plan_digest_mismatch`` (409) when ``plan_digest`` is not the request's plan's, with
    ``plan_below_floor`` (422) when the plan misses the floor of the active policy, and with
    ``gates_failed`` (409, every failing gate listed) when the gates, computed again now with
    the active policy and the evaluations recorded by now, fail."""
    row, _ = load(session, actor, promotion_id, for_update=False)  # 404 before any lock
    dep = _lock_deployment(session, row.deployment_id)
    row, namespace = _locked(session, actor, promotion_id)
    current = deployments.current_revision(session, dep)
    require_same_stable(session, row, current)
    _require_state(row, PromotionState.pending)
    _four_eyes(actor, row, namespace)
    actor.require("approve", resource(row, namespace))
    plan = bind_plan(row, policies.plans, plan_digest)
    promotion_gates.require_gates_at_approval(
        session,
        policies,
        row=row,
        deployment=dep,
        namespace=namespace,
        stable_version_id=current.stable_version_id,
    )
    approval = PromotionApproval(
        request_id=row.id,
        approver_id=actor.id,
        requester_id=row.requested_by_id,
        registrant_id=row.registered_by_id,
        approver_ci_identity=next(iter(actor.subject.ci_identities), None),
        registrant_ci_actor=row.ci_actor,
        comment=comment[:2000],
    )
    try:
        with session.begin_nested():
            session.add(approval)
            session.flush()
    except IntegrityError as exc:
        text = str(exc.orig)
        if any(c in text for c in FOUR_EYES_CONSTRAINTS):
            raise _separation(actor, row, "constraint", text[:200]) from exc
        raise Conflict("you approved this request already", context={"id": str(row.id)}) from exc
    count = session.scalar(
        select(func.count())
        .select_from(PromotionApproval)
        .where(PromotionApproval.request_id == row.id)
    )
    actor.audit(
        session,
        "promotion.approve",
        f"promotion:{row.id}",
        after={
            "approvals": count,
            "required": row.required_approvals,
            "plan": plan.name,
            "plan_digest": plan_digest_of(plan),
            "gates_policy_digest": policies.bundle.digest,
        },
    )
    if (count or 0) >= row.required_approvals:
        _promote(session, actor, row, dep, plan)
    return view(session, row)


def reject(
    session: Session, *, actor: Actor, promotion_id: uuid.UUID, reason: str
) -> PromotionView:
    if not reason.strip():
        raise BadRequest("a rejection needs a reason")
    row, namespace = _locked(session, actor, promotion_id)
    _require_state(row, PromotionState.pending, PromotionState.blocked)
    actor.require("approve", resource(row, namespace))
    return _close(session, actor, row, PromotionState.rejected, reason)


def cancel(session: Session, *, actor: Actor, promotion_id: uuid.UUID) -> PromotionView:
    row, namespace = _locked(session, actor, promotion_id)
    _require_state(row, PromotionState.pending, PromotionState.blocked)
    actor.require("cancel_promotion", resource(row, namespace))
    return _close(session, actor, row, PromotionState.cancelled, None)


# --- internals ------------------------------------------------------------------------------


def _check_target(ctx: VersionContext, dep: Deployment) -> None:
    if ctx.adapter.id != dep.adapter_id:
        raise BadRequest(
            "the version belongs to another adapter than the deployment's",
            context={"version": ctx.ref, "deployment": dep.name},
        )
    if ctx.version.base_model_version_id != dep.base_model_version_id:
        raise BadRequest(
            "the version was registered on another base revision than the deployment's",
            context={"version": ctx.ref, "deployment": dep.name},
        )


def _locked(
    session: Session, actor: Actor, promotion_id: uuid.UUID
) -> tuple[PromotionRequest, str]:
    return load(session, actor, promotion_id, for_update=True)


def _lock_deployment(session: Session, deployment_id: uuid.UUID) -> Deployment:
    return session.scalars(
        select(Deployment)
        .where(Deployment.id == deployment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _require_state(row: PromotionRequest, *allowed: str) -> None:
    state = effective_state(row)
    if state not in allowed:
        raise PromotionStateConflict(
            f"the request is {state}, not {' or '.join(allowed)}",
            context={"id": str(row.id), "state": state, "expected": list(allowed)},
        )


def _four_eyes(actor: Actor, row: PromotionRequest, namespace: str) -> None:
    if actor.id == row.requested_by_id:
        raise _separation(actor, row, "requester", "the approver requested this promotion")
    if actor.id == row.registered_by_id:
        raise _separation(actor, row, "registrant", "the approver registered this version")
    if row.ci_actor and row.ci_actor in actor.subject.ci_identities:
        raise _separation(
            actor, row, "ci_identity_owner", "the approver owns the CI identity that registered it"
        )
    decision = actor.decide("approve", resource(row, namespace))
    if not decision.allowed and FOUR_EYES_POLICY in decision.policies:
        raise _separation(actor, row, "policy", "the four-eyes policy forbids this approval")


def _separation(actor: Actor, row: PromotionRequest, rule: str, detail: str) -> SeparationOfDuties:
    error = SeparationOfDuties(
        f"separation of duties: {detail}",
        context={
            "id": str(row.id),
            "rule": rule,
            "policy": FOUR_EYES_POLICY,
            "constraints": list(FOUR_EYES_CONSTRAINTS),
        },
    )
    error.audit_entry = actor.entry(
        "authz.denied",
        f"promotion:{row.id}",
        decision={"allowed": False, "action": "approve", "policies": [FOUR_EYES_POLICY]},
        after={"rule": rule},
    )
    return error


def _promote(
    session: Session, actor: Actor, row: PromotionRequest, dep: Deployment, plan: Plan
) -> None:
    """Enough approvals: the version becomes the stable version, or its canary starts with
    ``plan`` (the request's bound plan). The caller holds the deployment's row lock."""
    version = session.get_one(AdapterVersion, row.adapter_version_id)
    if version.state != "validated":
        raise InvalidTransition(
            "the version is no longer promotable", context={"state": version.state}
        )
    current = deployments.current_revision(session, dep)
    if current.stable_version_id is None or plan.steps[0].share_bp >= moves.FULL_SHARE:
        # The first promotion (nothing to compare a canary with) or a plan without a canary:
        # the version becomes the stable version directly.
        revision = deployments.append_revision(
            session,
            actor=actor,
            deployment=dep,
            stable_version_id=row.adapter_version_id,
            reason=RevisionReason.promotion,
            detail=f"promotion {row.id}",
            promotion_id=row.id,
        )
        row.state = PromotionState.completed
    else:
        revision = moves.start_rollout(
            session, actor=actor, deployment=dep, promotion=row, plan=plan
        )
        row.state = PromotionState.rolling_out
    row.decided_at = datetime.now(UTC)
    row.revision = revision.revision
    session.flush()


def _close(
    session: Session, actor: Actor, row: PromotionRequest, state: str, reason: str | None
) -> PromotionView:
    before = row.state
    row.state = state
    row.decided_at = datetime.now(UTC)
    if reason:
        row.decision_reason = reason[:2000]
    session.flush()
    actor.audit(
        session,
        f"promotion.{state}",
        f"promotion:{row.id}",
        before={"state": before},
        after={"state": state, "reason": reason},
    )
    return view(session, row)
