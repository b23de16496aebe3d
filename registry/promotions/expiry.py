"""Requests overtaken by a new stable version expire.

A request's gates (``no_regression``, ``regression_suites``) were computed against the stable
version serving when it was made. Once another version becomes stable, those results say
nothing about the candidate against what it would now replace, so every open request of that
deployment expires (state ``expired``, audited as ``promotion.expired``) in the transaction that
changed the stable version; approving one answers ``409 stable_changed``. Request again to have
the gates computed against the new stable version.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.access.actor import Actor
from registry.audit.service import AuditEntry, append
from registry.catalog.models import Adapter, AdapterVersion, Namespace
from registry.deployments import service as deployments
from registry.deployments.models import Deployment, DeploymentRevision
from registry.errors import StableChanged
from registry.promotions.models import PromotionRequest, PromotionState
from registry.promotions.states import transition

SYSTEM_ACTOR = "system:controller"
STABLE_CHANGED = "stable_changed"


def expire_overtaken(
    session: Session,
    *,
    actor: Actor | None,
    deployment: Deployment,
    revision: DeploymentRevision,
) -> int:
    """Expire the deployment's pending requests made against another stable version than the
    new ``revision``'s (except the promotion that revision applies); return how many. Whoever
    appends a revision calls this right after (``registry.deployments`` itself knows nothing
    of promotions); :func:`append_revision` does both.

    Runs inside the caller's transaction, which holds the deployment's row lock (so no approval
    of this deployment runs meanwhile: approvals take that lock before the request's). Flushes.
    """
    stable_version_id, keep = revision.stable_version_id, revision.promotion_id
    stmt = (
        select(PromotionRequest)
        .where(
            PromotionRequest.deployment_id == deployment.id,
            PromotionRequest.state == PromotionState.pending,
            PromotionRequest.stable_version_id.is_distinct_from(stable_version_id),
        )
        .order_by(PromotionRequest.created_at)
        .with_for_update()
    )
    if keep is not None:
        stmt = stmt.where(PromotionRequest.id != keep)
    overtaken = list(session.scalars(stmt))
    now = datetime.now(UTC)
    for row in overtaken:
        transition(row, PromotionState.expired, at=now, reason=STABLE_CHANGED)
    if not overtaken:
        return 0
    session.flush()
    for row in overtaken:
        before = {"state": PromotionState.pending, "stable_version_id": _id(row.stable_version_id)}
        after = {
            "state": PromotionState.expired,
            "reason": STABLE_CHANGED,
            "stable_version_id": _id(stable_version_id),
            "revision": revision.revision,
        }
        resource = f"promotion:{row.id}"
        if actor is not None:
            actor.audit(session, "promotion.expired", resource, before=before, after=after)
        else:
            entry = AuditEntry(
                action="promotion.expired",
                resource=resource,
                actor=SYSTEM_ACTOR,
                before=before,
                after=after,
            )
            append(session, entry)
    return len(overtaken)


def append_revision(
    session: Session,
    *,
    actor: Actor | None,
    deployment: Deployment,
    current: DeploymentRevision,
    **fields: Any,
) -> DeploymentRevision:
    """``registry.deployments.service.append_revision`` (``fields`` are its keyword
    arguments), then the requests the new revision overtakes expire (``expire_overtaken``):
    the one call for whoever above the deployments package moves traffic."""
    revision = deployments.append_revision(
        session, actor=actor, deployment=deployment, current=current, **fields
    )
    expire_overtaken(session, actor=actor, deployment=deployment, revision=revision)
    return revision


def require_same_stable(
    session: Session, row: PromotionRequest, current: DeploymentRevision
) -> None:
    """``stable_changed`` (409) when a pending or expired request's gates were computed against
    another stable version than ``current``'s (normally it expired with that change already;
    a request from before this rule still pending is refused the same way)."""
    if row.state not in (PromotionState.pending, PromotionState.expired):
        return
    stale = row.state == PromotionState.expired and row.decision_reason == STABLE_CHANGED
    if not stale and row.stable_version_id == current.stable_version_id:
        return
    raise StableChanged(
        "the deployment's stable version changed since this request; request again",
        context={
            "id": str(row.id),
            "state": PromotionState.expired,
            "requested_against": _ref(session, row.stable_version_id),
            "stable": _ref(session, current.stable_version_id),
        },
    )


def _ref(session: Session, version_id: uuid.UUID | None) -> str | None:
    if version_id is None:
        return None
    ns, name, number = session.execute(
        select(Namespace.name, Adapter.name, AdapterVersion.version)
        .join(Adapter, Adapter.id == AdapterVersion.adapter_id)
        .join(Namespace, Namespace.id == Adapter.namespace_id)
        .where(AdapterVersion.id == version_id)
    ).one()
    return f"{ns}/{name}@v{number}"


def _id(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None
