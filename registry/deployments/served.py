""" "Which adapter served deployment D at time T (and to key K), who approved it": the revision
effective at T (index ``(deployment_id, effective_at)``), its versions with digests, the base,
the split, the promotion and its approvers, and the arm a key was routed to (recomputed from the
revision's salt and hash spec)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.access.actor import Actor
from registry.auth.models import Principal
from registry.catalog.models import AdapterVersion, BaseModelVersion
from registry.deployments import service as deployments
from registry.deployments.models import DeploymentRevision
from registry.errors import BadRequest, NothingServed
from registry.promotions.models import PromotionApproval, PromotionRequest
from registry.rollout.hashing import HASH_SPEC_V1, arm


def served_at(
    session: Session, *, actor: Actor, deployment: str, at: datetime, key: str | None
) -> dict[str, Any]:
    if at.tzinfo is None:
        raise BadRequest("at needs a time zone (e.g. 2026-11-25T10:00:00Z)")
    dep = deployments.get_deployment(session, actor=actor, name=deployment)
    revision = session.scalars(
        select(DeploymentRevision)
        .where(DeploymentRevision.deployment_id == dep.id, DeploymentRevision.effective_at <= at)
        .order_by(DeploymentRevision.effective_at.desc(), DeploymentRevision.revision.desc())
        .limit(1)
    ).first()
    if revision is None:
        raise NothingServed(
            "the deployment had no revision at that time",
            context={"deployment": deployment, "at": at.isoformat()},
        )
    view = deployments.view(session, dep)
    base = session.get_one(BaseModelVersion, dep.base_model_version_id)
    out: dict[str, Any] = {
        "deployment": dep.name,
        "at": at,
        "revision": revision.revision,
        "effective_at": revision.effective_at,
        "reason": revision.reason,
        "stable": _version(session, view.adapter, revision.stable_version_id),
        "candidate": _version(session, view.adapter, revision.candidate_version_id),
        "share_bp": revision.candidate_share_bp if revision.candidate_version_id else 0,
        "salt": revision.salt,
        "hash_spec": revision.hash_spec,
        "base": {"ref": view.base, "manifest_digest": base.manifest_digest},
        "promotion": _promotion(session, revision),
        "key": key,
        "arm": None,
    }
    if key is not None:
        out["arm"] = _arm(revision, key)
    return out


def _arm(revision: DeploymentRevision, key: str) -> str | None:
    if revision.stable_version_id is None and revision.candidate_version_id is None:
        return None
    if revision.candidate_version_id is None:
        return "stable"
    if revision.hash_spec != HASH_SPEC_V1:
        raise BadRequest("unknown hash spec", context={"hash_spec": revision.hash_spec})
    try:
        return arm(revision.salt, key, revision.candidate_share_bp)
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc


def _version(session: Session, adapter: str, version_id: object) -> dict[str, Any] | None:
    if version_id is None:
        return None
    v = session.get_one(AdapterVersion, version_id)
    return {"version": v.version, "ref": f"{adapter}@v{v.version}", "digest": v.digest}


def _promotion(session: Session, revision: DeploymentRevision) -> dict[str, Any] | None:
    if revision.promotion_id is None:
        return None
    row = session.get_one(PromotionRequest, revision.promotion_id)
    requester = session.get_one(Principal, row.requested_by_id)
    approvals = session.execute(
        select(Principal.name, PromotionApproval.created_at)
        .join(Principal, Principal.id == PromotionApproval.approver_id)
        .where(PromotionApproval.request_id == row.id)
        .order_by(PromotionApproval.created_at)
    ).all()
    return {
        "id": str(row.id),
        "requested_by": requester.name,
        "approvers": [{"approver": a[0], "at": a[1]} for a in approvals],
        "override_reason": row.override_reason,
        "policy_digest": row.policy_digest,
        "gates_passed": row.gates_passed,
    }
