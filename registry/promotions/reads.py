"""Read side of promotions: loading a request the caller may see, its computed state
(expiry), its policy resource, listings, the view the API returns, and the record of who
requested and approved a promotion (for "what served at T")."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.orm import Session, aliased

from registry.access.actor import Actor
from registry.auth.models import Principal
from registry.catalog.models import Adapter, AdapterVersion, Namespace
from registry.catalog.namespaces import readable
from registry.db.keyset import newest_first_after
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
    if state == PromotionState.expired:
        # Stored when a new stable version overtook the request; computed once its TTL ran out.
        stmt = stmt.where(
            or_(
                PromotionRequest.state == PromotionState.expired,
                and_(
                    PromotionRequest.state == PromotionState.pending,
                    PromotionRequest.expires_at <= now,
                ),
            )
        )
    elif state == PromotionState.pending:
        stmt = stmt.where(
            PromotionRequest.state == PromotionState.pending, PromotionRequest.expires_at > now
        )
    elif state is not None:
        stmt = stmt.where(PromotionRequest.state == state)
    if before is not None:
        stmt = stmt.where(
            newest_first_after(PromotionRequest.created_at, PromotionRequest.id, before)
        )
    return views(session, list(session.scalars(stmt)))


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
    """``expired`` once a pending request outlives ``expires_at`` (no sweeper needed), or when
    stored so (a new stable version overtook it: ``registry.promotions.expiry``)."""
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
    return views(session, [row])[0]


def views(session: Session, rows: list[PromotionRequest]) -> list[PromotionView]:
    """The API views of ``rows`` in three queries however many there are (deployment names
    with their adapter refs, version numbers, approvals)."""
    if not rows:
        return []
    deps = {
        dep_id: (name, f"{ns}/{adapter}")
        for dep_id, name, ns, adapter in session.execute(
            select(Deployment.id, Deployment.name, Namespace.name, Adapter.name)
            .join(Namespace, Namespace.id == Deployment.namespace_id)
            .join(Adapter, Adapter.id == Deployment.adapter_id)
            .where(Deployment.id.in_({r.deployment_id for r in rows}))
        )
    }
    numbers: dict[uuid.UUID, int] = {
        vid: number
        for vid, number in session.execute(
            select(AdapterVersion.id, AdapterVersion.version).where(
                AdapterVersion.id.in_({r.adapter_version_id for r in rows})
            )
        )
    }
    approvals: dict[uuid.UUID, list[tuple[str, datetime, str]]] = defaultdict(list)
    for request_id, name, at, comment in session.execute(
        select(
            PromotionApproval.request_id,
            Principal.name,
            PromotionApproval.created_at,
            PromotionApproval.comment,
        )
        .join(Principal, Principal.id == PromotionApproval.approver_id)
        .where(PromotionApproval.request_id.in_({r.id for r in rows}))
        .order_by(PromotionApproval.created_at)
    ):
        approvals[request_id].append((name, at, comment))
    now = datetime.now(UTC)
    out = []
    for row in rows:
        dep_name, adapter_ref = deps[row.deployment_id]
        out.append(
            PromotionView(
                request=row,
                state=effective_state(row, now),
                deployment=dep_name,
                version_ref=f"{adapter_ref}@v{numbers[row.adapter_version_id]}",
                approvals=approvals.get(row.id, []),
                revision=row.revision,
            )
        )
    return out


# One round trip: the request, its requester and its approvers (outer join: none yet). Built
# once: auditors replay many served-at-T queries (registry.traffic.served).
_APPROVER = aliased(Principal)
_APPROVAL_RECORD = (
    select(
        PromotionRequest.override_reason,
        PromotionRequest.policy_digest,
        PromotionRequest.gates_passed,
        Principal.name,
        _APPROVER.name,
        PromotionApproval.created_at,
    )
    .join(Principal, Principal.id == PromotionRequest.requested_by_id)
    .outerjoin(PromotionApproval, PromotionApproval.request_id == PromotionRequest.id)
    .outerjoin(_APPROVER, _APPROVER.id == PromotionApproval.approver_id)
    .where(PromotionRequest.id == bindparam("promotion_id"))
    .order_by(PromotionApproval.created_at)
)


def approval_record(session: Session, promotion_id: uuid.UUID | None) -> dict[str, Any] | None:
    """Who requested promotion ``promotion_id`` and who approved it when, its override reason,
    policy digest and gate verdict (one Core statement; None for no promotion)."""
    if promotion_id is None:
        return None
    rows = session.connection().execute(_APPROVAL_RECORD, {"promotion_id": promotion_id}).all()
    override_reason, policy_digest, gates_passed, requester = rows[0][:4]
    return {
        "id": str(promotion_id),
        "requested_by": requester,
        "approvers": [{"approver": r[4], "at": r[5]} for r in rows if r[4] is not None],
        "override_reason": override_reason,
        "policy_digest": policy_digest,
        "gates_passed": gates_passed,
    }
