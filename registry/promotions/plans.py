"""The rollout plan of a promotion request.

Chosen when the request is made (a plan of the active ``rollout.yaml`` by name, or one the
requester sends), it must meet the policy's floor (``plan_below_floor`` otherwise, the failed
checks listed) and is stored in full with the request: the approver sees the plan itself and
its digest, not only a name, and an approval binds that digest (``plan_digest_mismatch`` when
the approver saw another plan). The stored plan never changes afterwards (the ORM refuses it,
see ``registry.promotions.models``); the rollout starts exactly that plan.

Requests made before plans were stored with them carry only a name: their plan is the active
policy's plan of that name, frozen into the request by its first approval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from registry.canary.floor import Floor, floor_failures
from registry.canary.plans import Plan, PlansFile, UnknownPlan, plan_digest, plan_from_mapping
from registry.errors import (
    BadRequest,
    InvalidPolicy,
    InvalidTransition,
    PlanBelowFloor,
    PlanDigestMismatch,
)
from registry.promotions.models import PromotionRequest

CUSTOM_PLAN_NAME = "custom"


@dataclass(frozen=True)
class ShownPlan:
    """A request's plan as an approver sees it."""

    plan: Plan
    digest: str
    frozen: bool  # False: a request from before plans were stored; resolved by name now


def require_floor(plan: Plan, floor: Floor) -> None:
    """``plan_below_floor`` (422) listing every check ``plan`` fails."""
    failures = floor_failures(plan, floor)
    if failures:
        raise PlanBelowFloor(
            f"rollout plan {plan.name!r} is below the policy's floor",
            context={"plan": plan.name, "failures": failures, "floor": floor.to_dict()},
        )


def plan_for_request(plans: PlansFile, *, name: str | None, spec: dict[str, Any] | None) -> Plan:
    """The plan a new request carries: ``spec`` (validated strictly, named ``name`` or
    "custom"; ``invalid_policy`` when malformed) or the policy's plan ``name`` (its default plan
    for None; ``bad_request`` when unknown). Either must meet the floor (``plan_below_floor``)."""
    if spec is not None:
        plan = plan_from_mapping(name or CUSTOM_PLAN_NAME, spec)
    else:
        try:
            plan = plans.plan(name)
        except UnknownPlan as exc:
            raise BadRequest(str(exc), context={"plan": (name or "")[:64]}) from exc
    require_floor(plan, plans.floor)
    return plan


def frozen_plan(row: PromotionRequest) -> Plan | None:
    """The plan stored with the request (None for a request from before plans were stored)."""
    if row.plan_spec is None:
        return None
    return plan_from_mapping(row.plan_name, row.plan_spec, stored=True)


def shown_plan(row: PromotionRequest, plans: PlansFile | None) -> ShownPlan | None:
    """What an approver is shown: the stored plan, or for an older request the active
    policy's plan of its name (None when the policy no longer has it, or a stored plan no
    longer parses)."""
    try:
        plan = frozen_plan(row)
    except InvalidPolicy:
        return None
    if plan is not None:
        return ShownPlan(plan, plan_digest(plan), frozen=True)
    if plans is None or row.plan_name not in plans.plans:
        return None
    plan = plans.plans[row.plan_name]
    return ShownPlan(plan, plan_digest(plan), frozen=False)


def bind_plan(row: PromotionRequest, plans: PlansFile, stated_digest: str | None) -> Plan:
    """The plan an approval starts, checked: the digest the approver states (when given) is
    the plan's, and the plan still meets the active floor. An older request's plan is resolved
    by name and frozen into it here. Runs under the request's row lock; flushes nothing."""
    shown = shown_plan(row, plans)
    if shown is None:
        raise InvalidTransition(
            "the request's rollout plan is no longer defined; request again",
            context={"id": str(row.id), "plan": row.plan_name},
        )
    if stated_digest is not None and stated_digest != shown.digest:
        raise PlanDigestMismatch(
            "the request's rollout plan is not the one you approve",
            context={"id": str(row.id), "plan_digest": shown.digest, "stated": stated_digest},
        )
    require_floor(shown.plan, plans.floor)
    if not shown.frozen:
        row.plan_spec = shown.plan.to_dict()
    return shown.plan
