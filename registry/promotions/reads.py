"""Read side of promotions: loading a request the caller may see, its computed state
(expiry), its policy resource, listings and the view the API returns."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.access.actor import Actor
from registry.auth.models import Principal
from registry.catalog.models import AdapterVersion, Namespace
from registry.catalog.namespaces import readable
from registry.deployments import service as deployments
from registry.deployments.models import Deployment
from registry.errors import PromotionNotFound
from registry.policy.types import Resource
from registry.promotions.models import PromotionApproval, PromotionRequest, PromotionState


@dataclass(frozen=True)
class PromotionView:
    request: PromotionRequest
    state: str
    deployment: str
    version_ref: str
    approvals: list[tuple[str, datetime, str]]
    revision: int | None


def get(session: Session, *, actor: Actor, promotion_id: uuid.UUID) -> PromotionView:
    row, _ = load(session, actor, promotion_id, for_update=False)
    return view(session, row)


def list_requests(
    session: Session,
    *,
    actor: Actor,
    deployment: str | None,
    state: str | None,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[PromotionView]:
    """Requests newest first, in deployments the caller may read."""
    stmt = (
        select(PromotionRequest)
        .join(Deployment, Deployment.id == PromotionRequest.deployment_id)
        .join(Namespace, Namespace.id == Deployment.namespace_id)
        .where(Namespace.name.in_(sorted(readable(session, actor))))
        .order_by(PromotionRequest.created_at.desc(), PromotionRequest.id.desc())
        .limit(limit)
    )
    if deployment is not None:
        dep = deployments.get_deployment(session, actor=actor, name=deployment)
        stmt = stmt.where(PromotionRequest.deployment_id == dep.id)
    now = datetime.now(UTC)
    if state == PromotionState.expired:  # expiry is computed, not stored
        stmt = stmt.where(
            PromotionRequest.state == PromotionState.pending, PromotionRequest.expires_at <= now
        )
    elif state == PromotionState.pending:
        stmt = stmt.where(
            PromotionRequest.state == PromotionState.pending, PromotionRequest.expires_at > now
        )
    elif state is not None:
        stmt = stmt.where(PromotionRequest.state == state)
    if before is not None:
        stmt = stmt.where(
            (PromotionRequest.created_at < before[0])
            | ((PromotionRequest.created_at == before[0]) & (PromotionRequest.id < before[1]))
        )
    return [view(session, r) for r in session.scalars(stmt)]


def load(
    session: Session, actor: Actor, promotion_id: uuid.UUID, *, for_update: bool
) -> tuple[PromotionRequest, str]:
    stmt = select(PromotionRequest).where(PromotionRequest.id == promotion_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    row = session.scalars(stmt).one_or_none()
    missing = PromotionNotFound("no such promotion request", context={"id": str(promotion_id)})
    if row is None:
        raise missing
    dep = session.get_one(Deployment, row.deployment_id)
    namespace = deployments.namespace_of(session, dep)
    actor.require("read", resource(row, namespace), hidden=missing)
    return row, namespace


def effective_state(row: PromotionRequest, now: datetime | None = None) -> str:
    """``expired`` once a pending request outlives ``expires_at`` (no sweeper needed)."""
    now = now or datetime.now(UTC)
    if row.state == PromotionState.pending and row.expires_at <= now:
        return PromotionState.expired
    return row.state


def resource(row: PromotionRequest, namespace: str) -> Resource:
    return Resource(
        type="Promotion",
        id=str(row.id),
        namespace=namespace,
        attrs={
            "requested_by": str(row.requested_by_id),
            "registered_by": str(row.registered_by_id),
            "ci_actor": row.ci_actor or "",
        },
    )


def view(session: Session, row: PromotionRequest) -> PromotionView:
    dep = session.get_one(Deployment, row.deployment_id)
    view = deployments.view(session, dep)
    version = session.get_one(AdapterVersion, row.adapter_version_id)
    approvals = session.execute(
        select(Principal.name, PromotionApproval.created_at, PromotionApproval.comment)
        .join(Principal, Principal.id == PromotionApproval.approver_id)
        .where(PromotionApproval.request_id == row.id)
        .order_by(PromotionApproval.created_at)
    ).all()
    return PromotionView(
        request=row,
        state=effective_state(row),
        deployment=dep.name,
        version_ref=f"{view.adapter}@v{version.version}",
        approvals=[(a[0], a[1], a[2]) for a in approvals],
        revision=row.revision,
    )
