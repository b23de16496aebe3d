"""The mirror's database side of a round (in the worker's transactions; flushes, never
commits).

- :func:`plan_round` reads the bound deployments' audit events past the bindings' cursors: a
  binding is due when an event touched its deployment (every traffic change is a
  ``deployment.revision`` on ``deployment:NAME``: promotion approvals, rollout steps,
  completions, rollbacks), when it was changed, when its last attempt failed, or when it was
  last asserted ``reassert_s`` ago. A due binding is leased (no other replica takes it
  meanwhile) and planned: the MLflow version behind each arm, from the ``mlflow_imports``
  records of this server and model.
- :func:`record` writes an attempt's outcome: on success the cursor moves past the events the
  plan saw; drifts are audited (``mlflow_mirror.drift``) and kept on the binding; on failure
  the error is kept and the binding is due again next round.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.audit import canonical
from registry.audit import service as audit
from registry.audit.models import AuditEvent
from registry.audit.service import AuditEntry
from registry.catalog.models import AdapterVersion
from registry.deployments.models import Deployment, DeploymentRevision
from registry.mlflow_import.models import MlflowImport
from registry.mlflow_mirror.models import MlflowMirror
from registry.mlflow_mirror.sync import Arm, Outcome, Plan
from registry.mlflow_settings import MlflowSettings

SYSTEM_ACTOR = "system:mlflow-mirror"
OWN_ACTIONS = "mlflow_mirror."  # the mirror's own events (drift, set, remove) trigger nothing


def _bindings(session: Session) -> list[tuple[MlflowMirror, Deployment]]:
    stmt = (
        select(MlflowMirror, Deployment)
        .join(Deployment, Deployment.id == MlflowMirror.deployment_id)
        .where(MlflowMirror.enabled.is_(True))
        .order_by(MlflowMirror.id)
        .with_for_update(of=MlflowMirror)
        .execution_options(populate_existing=True)
    )
    return [(m, d) for m, d in session.execute(stmt).all()]


def mlflow_version(
    session: Session, version_id: uuid.UUID, *, server: str, model: str
) -> str | None:
    """The version of registered model ``model`` on ``server`` the adapter version was
    imported from (the newest record), or None."""
    stmt = (
        select(MlflowImport.model_version)
        .where(
            MlflowImport.adapter_version_id == version_id,
            MlflowImport.tracking_server == server,
            MlflowImport.model_version.is_not(None),
        )
        .order_by(MlflowImport.created_at.desc(), MlflowImport.id.desc())
    )
    for label in session.scalars(stmt):
        number = (label or "").removeprefix(f"{model}/")
        if label and label != number and number.isdigit():
            return number
    return None


def _arm(
    session: Session, row: MlflowMirror, role: str, alias: str, version_id: uuid.UUID | None
) -> Arm:
    if version_id is None:
        return Arm(role, alias, None, None)
    number = session.scalars(
        select(AdapterVersion.version).where(AdapterVersion.id == version_id)
    ).one()
    found = mlflow_version(session, version_id, server=row.tracking_server, model=row.model_name)
    return Arm(role, alias, number, found)


def _plan(session: Session, row: MlflowMirror, dep: Deployment, cursor: int) -> Plan:
    current = session.scalars(
        select(DeploymentRevision).where(
            DeploymentRevision.deployment_id == dep.id,
            DeploymentRevision.revision == dep.current_revision,
        )
    ).one_or_none()
    stable = current.stable_version_id if current is not None else None
    candidate = current.candidate_version_id if current is not None else None
    return Plan(
        binding_id=row.id,
        updated_at=row.updated_at,
        deployment=dep.name,
        server=row.tracking_server,
        model=row.model_name,
        revision=dep.current_revision,
        arms=(
            _arm(session, row, "stable", row.stable_alias, stable),
            _arm(session, row, "candidate", row.candidate_alias, candidate),
        ),
        last_set=dict(row.last_set or {}),
        cursor=cursor,
    )


def _due(row: MlflowMirror, touched: bool, now: datetime, settings: MlflowSettings) -> bool:
    if touched or row.last_error is not None or row.last_asserted_at is None:
        return True
    return (now - row.last_asserted_at).total_seconds() >= settings.mirror_reassert_s


def plan_round(session: Session, *, now: datetime, settings: MlflowSettings) -> list[Plan]:
    """Lease and plan every due binding; move the others' cursors past this round's events."""
    rows = _bindings(session)
    if not rows:
        return []
    resources = {f"deployment:{dep.name}" for _, dep in rows}
    events, last = _events(
        session, resources, after=min(row.cursor for row, _ in rows), limit=settings.mirror_batch
    )
    plans = []
    for row, dep in rows:
        if row.lease_until is not None and row.lease_until > now:
            continue  # another replica is asserting it
        resource = f"deployment:{dep.name}"
        touched = any(seq > row.cursor and on == resource for seq, on in events)
        cursor = max(row.cursor, last)
        if not _due(row, touched, now, settings):
            row.cursor = cursor
            continue
        row.lease_until = now + timedelta(seconds=settings.mirror_lease_s)
        plans.append(_plan(session, row, dep, cursor))
    session.flush()
    return plans


def _events(
    session: Session, resources: set[str], *, after: int, limit: int
) -> tuple[list[tuple[int, str]], int]:
    """The events on ``resources`` after seq ``after`` (the mirror's own left out), at most
    ``limit``, and the seq every cursor may move to: the log's end when they all fit. Only the
    bound deployments' events are read (index ``(resource, seq)``), so a long stretch of other
    events (registrations, a mirror off for a day) costs one round, not one per ``limit``.
    The end is read first: an event appended after it waits for the next round."""
    end = session.scalar(select(func.max(AuditEvent.seq))) or 0
    stmt = (
        select(AuditEvent.seq, AuditEvent.resource)
        .where(
            AuditEvent.seq > after,
            AuditEvent.seq <= end,
            AuditEvent.resource.in_(sorted(resources)),
            AuditEvent.action.not_like(OWN_ACTIONS.replace("_", "\\_") + "%", escape="\\"),
        )
        .order_by(AuditEvent.seq)
        .limit(limit)
    )
    found = [(int(seq), str(resource)) for seq, resource in session.execute(stmt).all()]
    return found, found[-1][0] if len(found) == limit else max(end, after)


def _new_drifts(previous: Any, drifts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drifts worth an audit event: a moved alias always, a missing MLflow version once."""
    seen = previous.get("drifts", []) if isinstance(previous, dict) else []
    return [d for d in drifts if d["reason"] == "alias_moved" or d not in seen]


def record(session: Session, plan: Plan, outcome: Outcome, *, now: datetime) -> None:
    stmt = (
        select(MlflowMirror)
        .where(MlflowMirror.id == plan.binding_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    row = session.scalars(stmt).one_or_none()
    if row is None or row.updated_at != plan.updated_at:
        return  # removed or changed meanwhile: the next round plans it afresh
    row.lease_until = None
    row.last_set = outcome.last_set
    # The cursor moves on a failure too: a binding in error is due every round anyway (and its
    # retry asserts the whole state), while a cursor left behind would hold every binding's
    # round reads back to it (they start at the lowest cursor).
    row.cursor = max(row.cursor, plan.cursor)
    if outcome.error is not None:
        row.last_error = outcome.error
        session.flush()
        return
    row.last_error = None
    row.last_asserted_at = now
    fresh = _new_drifts(row.last_drift, outcome.drifts)
    if outcome.drifts:
        at = canonical.format_timestamp(now)
        row.last_drift = {"at": at, "revision": plan.revision, "drifts": outcome.drifts}
    if fresh:
        audit.append(
            session,
            AuditEntry(
                action="mlflow_mirror.drift",
                resource=f"deployment:{plan.deployment}",
                actor=SYSTEM_ACTOR,
                after={
                    "tracking_server": plan.server,
                    "model": plan.model,
                    "revision": plan.revision,
                    "drifts": fresh,
                },
            ),
        )
    session.flush()
