"""Promotion requests: gates computed and stored at request time and computed again at every
approval, the rollout plan frozen with the request and bound by the approval, four-eyes
approvals, compare-and-set state moves, and the deployment revision an approved promotion
produces.

Separation of duties is enforced three times, so a bug in one layer fails closed (see
``registry.promotions.four_eyes``). A request changes state only through
``registry.promotions.states.transition``.

Lock order: an approval locks the deployment's row before the request's, like every change of
the deployment's stable version (which expires the requests it overtakes, see
``registry.promotions.expiry``), so the two never wait on each other in a cycle.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from registry.access.actor import Actor, deployment_resource
from registry.access.policy_sets import ActivePolicies
from registry.canary.plans import Plan
from registry.canary.plans import plan_digest as plan_digest_of
from registry.catalog.models import AdapterVersion
from registry.catalog.queries import VersionContext, resolve_version
from registry.deployments import rollout_records
from registry.deployments import service as deployments
from registry.deployments.models import Deployment, DeploymentRevision, RolloutState
from registry.deployments.states import RevisionReason
from registry.errors import BadRequest, InvalidTransition, PromotionStateConflict
from registry.policy.gates import GateResult, gates_passed
from registry.promotions import four_eyes, outcomes
from registry.promotions import gates as promotion_gates
from registry.promotions.expiry import expire_overtaken, require_same_stable
from registry.promotions.models import PromotionRequest, PromotionState
from registry.promotions.plans import bind_plan, plan_for_request
from registry.promotions.reads import PromotionView, effective_state, load, resource, view
from registry.promotions.states import initial_state, transition

log = logging.getLogger("registry.promotions")


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
    dep, namespace, ctx, current = _target(session, actor, deployment, ref)
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
    overridden = _overrides(actor, dep, namespace, override_reason, passed=passed)
    row = PromotionRequest(
        id=uuid.uuid4(),
        deployment_id=dep.id,
        adapter_version_id=ctx.version.id,
        requested_by_id=actor.id,
        registered_by_id=ctx.version.registered_by_id,
        ci_actor=ctx.version.ci_actor,
        state=initial_state(passed or overridden),
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
    _audit_request(session, actor, row, ctx, chosen, results, dep_name=dep.name)
    if row.state == PromotionState.pending and row.required_approvals == 0:
        # gates.yaml may waive approvals for a target
        _promote(
            session, actor, row, deployments.lock_deployment(session, row.deployment_id), chosen
        )
    return view(session, row)


def _target(
    session: Session, actor: Actor, deployment: str, ref: str
) -> tuple[Deployment, str, VersionContext, DeploymentRevision]:
    """The deployment a request targets (``request_promotion`` authorized), its namespace, the
    version and the deployment's current revision; refused when the version cannot target it
    or is its stable version already."""
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
    return dep, namespace, ctx, current


def _overrides(
    actor: Actor, dep: Deployment, namespace: str, override_reason: str | None, *, passed: bool
) -> bool:
    """Whether the request overrides failing gates (an admin's written reason)."""
    if override_reason is None:
        return False
    if not override_reason.strip():
        raise BadRequest("an override needs a written reason")
    actor.require("override_gates", deployment_resource(dep.name, namespace))
    return not passed


def _audit_request(
    session: Session,
    actor: Actor,
    row: PromotionRequest,
    ctx: VersionContext,
    plan: Plan,
    results: list[GateResult],
    *,
    dep_name: str,
) -> None:
    """``promotion.request``, and ``promotion.gates_overridden`` (logged loudly too)."""
    resource = f"promotion:{row.id}"
    actor.audit(
        session,
        "promotion.request",
        resource,
        after={
            "deployment": dep_name,
            "version": ctx.ref,
            "digest": ctx.version.digest,
            "state": row.state,
            "failed_gates": [g.name for g in results if not g.passed],
            "policy_digest": row.policy_digest,
            "plan": plan.name,
            "plan_digest": plan_digest_of(plan),
        },
    )
    if row.override_reason is None:
        return
    log.warning(
        "GATES OVERRIDDEN by %s for %s -> %s: %s",
        actor.name,
        ctx.ref,
        dep_name,
        row.override_reason,
    )
    actor.audit(
        session,
        "promotion.gates_overridden",
        resource,
        after={
            "override_reason": row.override_reason,
            "failed_gates": [g.to_dict() for g in results if not g.passed],
        },
    )


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
    dep = deployments.lock_deployment(session, row.deployment_id)
    row, namespace = _locked(session, actor, promotion_id)
    current = deployments.current_revision(session, dep)
    require_same_stable(session, row, current)
    _require_state(row, PromotionState.pending)
    four_eyes.require_four_eyes(actor, row, namespace)
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
    count = four_eyes.add_approval(session, actor, row, comment)
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
    if count >= row.required_approvals:
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


def _require_state(row: PromotionRequest, *allowed: str) -> None:
    state = effective_state(row)
    if state not in allowed:
        raise PromotionStateConflict(
            f"the request is {state}, not {' or '.join(allowed)}",
            context={"id": str(row.id), "state": state, "expected": list(allowed)},
        )


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
    if current.stable_version_id is None or plan.steps[0].share_bp >= rollout_records.FULL_SHARE:
        # The first promotion (nothing to compare a canary with) or a plan without a canary:
        # the version becomes the stable version directly.
        revision = deployments.append_revision(
            session,
            actor=actor,
            deployment=dep,
            current=current,
            stable_version_id=row.adapter_version_id,
            reason=RevisionReason.promotion,
            detail=f"promotion {row.id}",
            promotion_id=row.id,
        )
        state = PromotionState.completed
    else:
        # A running rollout (another candidate's canary) is superseded by this one.
        outcomes.end_rollout(session, dep.id, RolloutState.superseded, PromotionState.rolled_back)
        revision = rollout_records.start(
            session,
            actor=actor,
            deployment=dep,
            current=current,
            promotion_id=row.id,
            candidate_version_id=row.adapter_version_id,
            plan=plan,
        )
        state = PromotionState.rolling_out
    expire_overtaken(session, actor=actor, deployment=dep, revision=revision)
    transition(row, state, at=datetime.now(UTC))
    row.revision = revision.revision
    session.flush()


def _close(
    session: Session,
    actor: Actor,
    row: PromotionRequest,
    state: PromotionState,
    reason: str | None,
) -> PromotionView:
    before = row.state
    transition(row, state, at=datetime.now(UTC), reason=reason[:2000] if reason else None)
    session.flush()
    actor.audit(
        session,
        f"promotion.{state}",
        f"promotion:{row.id}",
        before={"state": before},
        after={"state": state, "reason": reason},
    )
    return view(session, row)
