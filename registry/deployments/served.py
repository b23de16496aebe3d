""" "Which adapter served deployment D at time T (and to key K), who approved it": the revision
effective at T (index ``(deployment_id, effective_at)``), its versions with digests, the base,
the split, the promotion and its approvers, and the arm a key was routed to (recomputed from the
revision's salt and hash spec)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session, aliased

from registry import refs
from registry.access.actor import Actor
from registry.auth.models import Principal
from registry.canary.hashing import HASH_SPEC_V1, arm
from registry.catalog.models import Adapter, AdapterVersion, BaseModel, BaseModelVersion, Namespace
from registry.deployments import service as deployments
from registry.deployments.models import Deployment, DeploymentRevision
from registry.errors import BadRequest, NothingServed
from registry.promotions.models import PromotionApproval, PromotionRequest

# The statements are built once (auditors replay many of these; building a select() costs more
# in Python than running it); SQLAlchemy caches their compiled forms.
_STABLE = aliased(AdapterVersion)
_CANDIDATE = aliased(AdapterVersion)
# Two statements rather than one: joined into one (a correlated subquery for the revision),
# PostgreSQL spent more time planning the nine-table statement than the round trip saved.
_DEPLOYMENT = (
    select(
        Deployment.id,
        Deployment.name,
        Namespace.name.label("namespace"),
        Adapter.name.label("adapter"),
        BaseModel.name.label("base_name"),
        BaseModelVersion.revision.label("base_revision"),
        BaseModelVersion.manifest_digest,
    )
    .select_from(Deployment)
    .join(Namespace, Namespace.id == Deployment.namespace_id)
    .join(Adapter, Adapter.id == Deployment.adapter_id)
    .join(BaseModelVersion, BaseModelVersion.id == Deployment.base_model_version_id)
    .join(BaseModel, BaseModel.id == BaseModelVersion.base_model_id)
    .where(Deployment.name == bindparam("name"))
)
# The revision effective at T (the newest with effective_at <= T: index (deployment_id,
# effective_at)) with both its versions (outer joins: no candidate, or no stable yet).
_REVISION_AT = (
    select(
        DeploymentRevision.revision,
        DeploymentRevision.effective_at,
        DeploymentRevision.reason,
        DeploymentRevision.candidate_share_bp,
        DeploymentRevision.salt,
        DeploymentRevision.hash_spec,
        DeploymentRevision.promotion_id,
        _STABLE.version.label("stable_version"),
        _STABLE.digest.label("stable_digest"),
        _CANDIDATE.version.label("candidate_version"),
        _CANDIDATE.digest.label("candidate_digest"),
    )
    .select_from(DeploymentRevision)
    .outerjoin(_STABLE, _STABLE.id == DeploymentRevision.stable_version_id)
    .outerjoin(_CANDIDATE, _CANDIDATE.id == DeploymentRevision.candidate_version_id)
    .where(
        DeploymentRevision.deployment_id == bindparam("deployment_id"),
        DeploymentRevision.effective_at <= bindparam("at"),
    )
    .order_by(DeploymentRevision.effective_at.desc(), DeploymentRevision.revision.desc())
    .limit(1)
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
    refs.deployment_name(deployment)
    conn = session.connection()  # Core rows only: no ORM execution layer per statement
    dep = conn.execute(_DEPLOYMENT, {"name": deployment}).one_or_none()
    deployments.authorize(actor, deployment, None if dep is None else dep.namespace)
    assert dep is not None
    row = conn.execute(_REVISION_AT, {"deployment_id": dep.id, "at": at}).first()
    if row is None:
        raise NothingServed(
            "the deployment had no revision at that time",
            context={"deployment": deployment, "at": at.isoformat()},
        )
    prefix = f"{dep.namespace}/{dep.adapter}"
    stable = _version(prefix, row.stable_version, row.stable_digest)
    candidate = _version(prefix, row.candidate_version, row.candidate_digest)
    out: dict[str, Any] = {
        "deployment": dep.name,
        "at": at,
        "revision": row.revision,
        "effective_at": row.effective_at,
        "reason": row.reason,
        "stable": stable,
        "candidate": candidate,
        "share_bp": row.candidate_share_bp if candidate is not None else 0,
        "salt": row.salt,
        "hash_spec": row.hash_spec,
        "base": {
            "ref": f"{dep.base_name}@{dep.base_revision}",
            "manifest_digest": dep.manifest_digest,
        },
        "promotion": _promotion(conn, row.promotion_id),
        "key": key,
        "arm": None,
    }
    if key is not None and candidate is not None:
        out["arm"] = _split(row.hash_spec, row.salt, row.candidate_share_bp, key)
    elif key is not None and stable is not None:
        out["arm"] = "stable"
    return out


def _version(prefix: str, version: int | None, digest: str | None) -> dict[str, Any] | None:
    if version is None:
        return None
    return {"version": version, "ref": f"{prefix}@v{version}", "digest": digest}


def _split(hash_spec: str, salt: str, share_bp: int, key: str) -> str:
    if hash_spec != HASH_SPEC_V1:
        raise BadRequest("unknown hash spec", context={"hash_spec": hash_spec})
    try:
        return arm(salt, key, share_bp)
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc


def _promotion(conn: Connection, promotion_id: uuid.UUID | None) -> dict[str, Any] | None:
    if promotion_id is None:
        return None
    rows = conn.execute(_PROMOTION, {"promotion_id": promotion_id}).all()
    override_reason, policy_digest, gates_passed, requester = rows[0][:4]
    return {
        "id": str(promotion_id),
        "requested_by": requester,
        "approvers": [{"approver": r[4], "at": r[5]} for r in rows if r[4] is not None],
        "override_reason": override_reason,
        "policy_digest": policy_digest,
        "gates_passed": gates_passed,
    }
