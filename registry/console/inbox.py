"""The data of the approver inbox and of a promotion's page (views over the API's reads)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from registry.auth.models import Principal
from registry.catalog.evaluations import ComparisonRow, compare_versions
from registry.catalog.models import Adapter, AdapterVersion, Namespace
from registry.deployments.models import Deployment
from registry.deployments.service import namespace_of
from registry.promotions import reads
from registry.promotions.four_eyes import FOUR_EYES_POLICY
from registry.promotions.models import PromotionState
from registry.promotions.reads import PromotionView
from registry.promotions.schemas import PromotionRead

if TYPE_CHECKING:
    from registry.console.web import Page

INBOX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class InboxRow:
    promotion: PromotionRead
    requested_by: str


def _may_approve(p: Page, view: PromotionView) -> bool:
    row = view.request
    namespace = namespace_of(p.session, p.session.get_one(Deployment, row.deployment_id))
    return p.actor.decide("approve", reads.resource(row, namespace)).allowed


def _names(p: Page, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    stmt = select(Principal.id, Principal.name).where(Principal.id.in_(ids))
    return {pid: name for pid, name in p.session.execute(stmt)}


def inbox_rows(p: Page) -> list[InboxRow]:
    """Pending promotions, newest first, that Cedar lets the caller approve now (four-eyes
    included: one's own requests are not in one's inbox)."""
    views = reads.list_requests(
        p.session,
        actor=p.actor,
        deployment=None,
        state=PromotionState.pending,
        before=None,
        limit=INBOX_LIMIT,
    )
    mine = [v for v in views if _may_approve(p, v)]
    names = _names(p, {v.request.requested_by_id for v in mine})
    return [
        InboxRow(PromotionRead.from_view(v, p.policies.plans), names[v.request.requested_by_id])
        for v in mine
    ]


def promotion_detail(p: Page, promotion_id: uuid.UUID) -> dict[str, Any]:
    """A promotion as its approver must see it: gates, plan and digest, candidate vs current
    stable scores, requester, approvals, and whether the caller may decide it."""
    view = reads.get(p.session, actor=p.actor, promotion_id=promotion_id)
    row = view.request
    body = PromotionRead.from_view(view, p.policies.plans)
    stable_ref = _ref_of(p, row.stable_version_id)
    comparison: list[ComparisonRow] = []
    if stable_ref is not None:
        _, _, comparison = compare_versions(
            p.session, actor=p.actor, ref_a=stable_ref, ref_b=view.version_ref
        )
    names = _names(p, {row.requested_by_id})
    decide = p.actor.decide(
        "approve",
        reads.resource(
            row, namespace_of(p.session, p.session.get_one(Deployment, row.deployment_id))
        ),
    )
    return {
        "promotion": body,
        "requested_by": names.get(row.requested_by_id, str(row.requested_by_id)),
        "stable_ref": stable_ref,
        "comparison": comparison,
        "may_decide": body.state == PromotionState.pending and decide.allowed,
        "four_eyes": not decide.allowed and FOUR_EYES_POLICY in decide.policies,
        "decide_refusal": None if decide.allowed else decide.policy,
        "pending": body.state == PromotionState.pending,
    }


def _ref_of(p: Page, version_id: uuid.UUID | None) -> str | None:
    if version_id is None:
        return None
    ns, name, number = p.session.execute(
        select(Namespace.name, Adapter.name, AdapterVersion.version)
        .join(Adapter, Adapter.id == AdapterVersion.adapter_id)
        .join(Namespace, Namespace.id == Adapter.namespace_id)
        .where(AdapterVersion.id == version_id)
    ).one()
    return f"{ns}/{name}@v{number}"
