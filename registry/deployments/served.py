""" "Which adapter served deployment D at time T (and to key K), who approved it": the revision
effective at T (index ``(deployment_id, effective_at)``), its versions with digests, the base,
the split, the promotion and its approvers, and the arm a key was routed to (recomputed from the
revision's salt and hash spec)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, aliased

from registry.access.actor import Actor
from registry.auth.models import Principal
from registry.catalog.models import Adapter, AdapterVersion, BaseModel, BaseModelVersion, Namespace
from registry.deployments import service as deployments
from registry.deployments.models import Deployment, DeploymentRevision
from registry.errors import BadRequest, NothingServed
from registry.promotions.models import PromotionApproval, PromotionRequest
from registry.rollout.hashing import HASH_SPEC_V1, arm

# The statements are built once (auditors replay many of these; building a select() costs more
# in Python than running it); SQLAlchemy caches their compiled forms.
_REVISION_AT = (
    select(DeploymentRevision)
    .where(
        DeploymentRevision.deployment_id == bindparam("deployment_id"),
        DeploymentRevision.effective_at <= bindparam("at"),
    )
    .order_by(DeploymentRevision.effective_at.desc(), DeploymentRevision.revision.desc())
    .limit(1)
)
_NAMES = (
    select(
        Namespace.name,
        Adapter.name,
        BaseModel.name,
        BaseModelVersion.revision,
        BaseModelVersion.manifest_digest,
    )
    .select_from(Deployment)
    .join(Namespace, Namespace.id == Deployment.namespace_id)
    .join(Adapter, Adapter.id == Deployment.adapter_id)
    .join(BaseModelVersion, BaseModelVersion.id == Deployment.base_model_version_id)
    .join(BaseModel, BaseModel.id == BaseModelVersion.base_model_id)
    .where(Deployment.id == bindparam("deployment_id"))
)
_VERSIONS = select(AdapterVersion.id, AdapterVersion.version, AdapterVersion.digest).where(
    AdapterVersion.id.in_(bindparam("ids", expanding=True))
)
# One round trip: the request, its requester and its approvers (outer join: none yet).
_APPROVER = aliased(Principal)
_PROMOTION = (
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


def served_at(
    session: Session, *, actor: Actor, deployment: str, at: datetime, key: str | None
) -> dict[str, Any]:
    if at.tzinfo is None:
        raise BadRequest("at needs a time zone (e.g. 2026-11-25T10:00:00Z)")
    dep = deployments.get_deployment(session, actor=actor, name=deployment)
    revision = session.scalars(_REVISION_AT, {"deployment_id": dep.id, "at": at}).first()
    if revision is None:
        raise NothingServed(
            "the deployment had no revision at that time",
            context={"deployment": deployment, "at": at.isoformat()},
        )
    ns_name, adapter_name, base_name, base_revision, manifest_digest = session.execute(
        _NAMES, {"deployment_id": dep.id}
    ).one()
    prefix = f"{ns_name}/{adapter_name}"
    versions = _versions(
        session, prefix, [revision.stable_version_id, revision.candidate_version_id]
    )
    out: dict[str, Any] = {
        "deployment": dep.name,
        "at": at,
        "revision": revision.revision,
        "effective_at": revision.effective_at,
        "reason": revision.reason,
        "stable": versions.get(revision.stable_version_id),
        "candidate": versions.get(revision.candidate_version_id),
        "share_bp": revision.candidate_share_bp if revision.candidate_version_id else 0,
        "salt": revision.salt,
        "hash_spec": revision.hash_spec,
        "base": {"ref": f"{base_name}@{base_revision}", "manifest_digest": manifest_digest},
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


def _versions(
    session: Session, prefix: str, ids: list[uuid.UUID | None]
) -> dict[uuid.UUID | None, dict[str, Any]]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    rows = session.execute(_VERSIONS, {"ids": wanted}).all()
    return {r[0]: {"version": r[1], "ref": f"{prefix}@v{r[1]}", "digest": r[2]} for r in rows}


def _promotion(session: Session, revision: DeploymentRevision) -> dict[str, Any] | None:
    if revision.promotion_id is None:
        return None
    rows = session.execute(_PROMOTION, {"promotion_id": revision.promotion_id}).all()
    override_reason, policy_digest, gates_passed, requester = rows[0][:4]
    return {
        "id": str(revision.promotion_id),
        "requested_by": requester,
        "approvers": [{"approver": r[4], "at": r[5]} for r in rows if r[4] is not None],
        "override_reason": override_reason,
        "policy_digest": policy_digest,
        "gates_passed": gates_passed,
    }
