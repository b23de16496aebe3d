"""Promotion requests: gates, four-eyes approvals, reject and cancel."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query, status

from registry.api.deps import ActorDep, PoliciesDep, SessionDep, WriteDep
from registry.api.pagination import Page, decode_time_token, page_of, time_key
from registry.api.params import DeploymentQ
from registry.api.routes._common import PageDep, authenticated_router, responses
from registry.errors import (
    AdapterNotFound,
    BadRequest,
    DeploymentNotFound,
    GatesFailed,
    InvalidPageToken,
    InvalidPolicy,
    InvalidReference,
    InvalidTransition,
    PlanBelowFloor,
    PlanDigestMismatch,
    PolicyDenied,
    PromotionNotFound,
    PromotionStateConflict,
    SeparationOfDuties,
    StableChanged,
    VersionNotFound,
)
from registry.promotions import reads
from registry.promotions import service as promotions
from registry.promotions.schemas import (
    PromotionCreate,
    PromotionDecision,
    PromotionRead,
    PromotionReject,
)

router = authenticated_router(prefix="/api/v1/promotions", tags=["promotions"])

_REQUEST = responses(
    InvalidReference,
    DeploymentNotFound,
    AdapterNotFound,
    VersionNotFound,
    InvalidTransition,
    PolicyDenied,
    BadRequest,
    InvalidPolicy,
    PlanBelowFloor,
)


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=PromotionRead, responses=_REQUEST
)
def request_promotion(body: PromotionCreate, ctx: WriteDep, active: PoliciesDep) -> object:
    """Request that a version become the deployment's stable version. Gates are computed and
    stored; failing gates give state ``blocked`` with the reasons (an admin may override with a
    written reason). The rollout plan (``plan`` by name, or ``plan_spec``) must meet the floor of
    the active rollout.yaml (422 ``plan_below_floor``) and is stored in full with the request."""
    return ctx.idempotent(
        body,
        lambda: PromotionRead.from_view(
            promotions.request_promotion(
                ctx.session,
                actor=ctx.actor,
                policies=active,
                ref=body.ref,
                deployment=body.deployment,
                ttl_s=ctx.settings.policy.promotion_ttl_s,
                reason=body.reason,
                override_reason=body.override_reason,
                plan=body.plan,
                plan_spec=body.plan_spec,
            ),
            active.plans,
        ),
        status_code=201,
    )


@router.get(
    "",
    response_model=Page[PromotionRead],
    responses=responses(InvalidPageToken, DeploymentNotFound),
)
def list_promotions(
    actor: ActorDep,
    session: SessionDep,
    page: PageDep,
    active: PoliciesDep,
    deployment: DeploymentQ = None,
    state: Annotated[str | None, Query(max_length=16)] = None,
) -> Page[PromotionRead]:
    """Promotion requests newest first."""
    before = decode_time_token(page.token)
    rows = reads.list_requests(
        session, actor=actor, deployment=deployment, state=state, before=before, limit=page.fetch
    )
    return page_of(
        rows,
        page.limit,
        lambda v: PromotionRead.from_view(v, active.plans),
        key=lambda p: time_key(p.created_at, p.id),
    )


@router.get("/{promotion_id}", response_model=PromotionRead, responses=responses(PromotionNotFound))
def get_promotion(
    promotion_id: uuid.UUID, actor: ActorDep, session: SessionDep, active: PoliciesDep
) -> PromotionRead:
    """One promotion request with its gates, approvals and the whole rollout plan an approval
    starts (``plan_spec``) with its digest (``plan_digest``)."""
    return PromotionRead.from_view(
        reads.get(session, actor=actor, promotion_id=promotion_id), active.plans
    )


_DECIDE = responses(PromotionNotFound, PromotionStateConflict, SeparationOfDuties, PolicyDenied)
_APPROVE = responses(
    PromotionNotFound,
    PromotionStateConflict,
    SeparationOfDuties,
    PolicyDenied,
    StableChanged,
    PlanDigestMismatch,
    PlanBelowFloor,
    GatesFailed,
    InvalidTransition,
)


@router.post("/{promotion_id}/approve", response_model=PromotionRead, responses=_APPROVE)
def approve(
    promotion_id: uuid.UUID,
    ctx: WriteDep,
    active: PoliciesDep,
    body: PromotionDecision | None = None,
) -> object:
    """Approve (never your own request or a version you or your CI identity registered).

    The gates run again now, against the deployment's stable version now (409 ``gates_failed``
    listing the failing gates); a request overtaken by a new stable version is expired (409
    ``stable_changed``). ``plan_digest`` binds the approval to the plan you saw (409
    ``plan_digest_mismatch``); the plan must meet the active floor (422 ``plan_below_floor``)."""
    return ctx.idempotent(
        body,
        lambda: PromotionRead.from_view(
            promotions.approve(
                ctx.session,
                actor=ctx.actor,
                policies=active,
                promotion_id=promotion_id,
                comment=body.comment if body else "",
                plan_digest=body.plan_digest if body else None,
            ),
            active.plans,
        ),
    )


@router.post("/{promotion_id}/reject", response_model=PromotionRead, responses=_DECIDE)
def reject(
    promotion_id: uuid.UUID, body: PromotionReject, ctx: WriteDep, active: PoliciesDep
) -> object:
    """Reject a pending or blocked request, with a reason."""
    return ctx.idempotent(
        body,
        lambda: PromotionRead.from_view(
            promotions.reject(
                ctx.session, actor=ctx.actor, promotion_id=promotion_id, reason=body.reason
            ),
            active.plans,
        ),
    )


@router.post("/{promotion_id}/cancel", response_model=PromotionRead, responses=_DECIDE)
def cancel(promotion_id: uuid.UUID, ctx: WriteDep, active: PoliciesDep) -> object:
    """Cancel your own pending or blocked request."""
    return ctx.idempotent(
        None,
        lambda: PromotionRead.from_view(
            promotions.cancel(ctx.session, actor=ctx.actor, promotion_id=promotion_id),
            active.plans,
        ),
    )
