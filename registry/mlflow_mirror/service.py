"""Bindings of deployments to MLflow registered models: set, read, remove (in the caller's
transaction). Changing one needs the permission that moves the deployment's traffic
(``rollout``); reading it, reading the deployment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.access.actor import Actor
from registry.audit import service as audit
from registry.deployments import service as deployments
from registry.deployments.models import Deployment
from registry.errors import MlflowMirrorNotFound
from registry.mlflow_mirror.models import MlflowMirror

DEFAULT_STABLE_ALIAS = "prod-stable"
DEFAULT_CANDIDATE_ALIAS = "prod-candidate"


@dataclass(frozen=True, slots=True)
class BindingSpec:
    tracking_server: str  # normalised and allow-listed by the caller
    model_name: str
    stable_alias: str = DEFAULT_STABLE_ALIAS
    candidate_alias: str = DEFAULT_CANDIDATE_ALIAS
    enabled: bool = True


def binding_of(
    session: Session, deployment_id: object, *, for_update: bool = False
) -> MlflowMirror | None:
    stmt = select(MlflowMirror).where(MlflowMirror.deployment_id == deployment_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.scalars(stmt).one_or_none()


def _missing(name: str) -> MlflowMirrorNotFound:
    return MlflowMirrorNotFound(
        "the deployment is not mirrored into MLflow", context={"deployment": name}
    )


def put_binding(
    session: Session, *, actor: Actor, name: str, spec: BindingSpec
) -> tuple[Deployment, MlflowMirror, bool]:
    """Create or replace ``name``'s binding; (deployment, binding, created). A new binding
    starts at the audit head and is asserted on the next round; a changed one forgets what
    was last set (the new model's aliases are not told against the old one's)."""
    dep = deployments.get_deployment(
        session, actor=actor, name=name, action="rollout", for_update=True
    )
    row = binding_of(session, dep.id, for_update=True)
    created = row is None
    now = datetime.now(UTC)
    if row is None:
        row = MlflowMirror(
            deployment_id=dep.id,
            cursor=audit.head(session).seq,
            last_set={},
            created_by_id=actor.id,
        )
        session.add(row)
    target = (spec.tracking_server, spec.model_name, spec.stable_alias, spec.candidate_alias)
    if created or target != (
        row.tracking_server,
        row.model_name,
        row.stable_alias,
        row.candidate_alias,
    ):
        row.last_set, row.last_drift = {}, None
    row.tracking_server, row.model_name, row.stable_alias, row.candidate_alias = target
    row.enabled = spec.enabled
    row.last_error, row.last_asserted_at, row.lease_until = None, None, None
    row.updated_at = now
    session.flush()
    actor.audit(
        session,
        "mlflow_mirror.set",
        f"deployment:{name}",
        after={
            "tracking_server": spec.tracking_server,
            "model": spec.model_name,
            "stable_alias": spec.stable_alias,
            "candidate_alias": spec.candidate_alias,
            "enabled": spec.enabled,
        },
    )
    return dep, row, created


def get_binding(session: Session, *, actor: Actor, name: str) -> tuple[Deployment, MlflowMirror]:
    dep = deployments.get_deployment(session, actor=actor, name=name)
    row = binding_of(session, dep.id)
    if row is None:
        raise _missing(name)
    return dep, row


def remove_binding(session: Session, *, actor: Actor, name: str) -> None:
    """Remove the binding (MLflow's aliases stay where they are)."""
    dep = deployments.get_deployment(
        session, actor=actor, name=name, action="rollout", for_update=True
    )
    row = binding_of(session, dep.id, for_update=True)
    if row is None:
        raise _missing(name)
    before = {"tracking_server": row.tracking_server, "model": row.model_name}
    session.delete(row)
    session.flush()
    actor.audit(session, "mlflow_mirror.remove", f"deployment:{name}", before=before)
