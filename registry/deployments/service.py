"""Deployments: create, read, history, and appending revisions (the only way state changes).

A revision is never edited: promotions, rollouts and rollbacks each append one under the
deployment's row lock, so revision numbers have no gaps and two writers cannot both win.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry import refs
from registry.access.actor import Actor, deployment_resource
from registry.audit.service import AuditEntry, append
from registry.canary.hashing import HASH_SPEC_V1
from registry.catalog.base_models import get_base_version
from registry.catalog.models import Adapter, AdapterVersion, BaseModel, BaseModelVersion, Namespace
from registry.catalog.queries import get_adapter
from registry.deployments.models import (
    ROUTING_CHANNEL,
    Deployment,
    DeploymentRevision,
    RevisionReason,
    RoutingEpoch,
)
from registry.errors import DeploymentExists, DeploymentNotFound
from registry.promotions.expiry import expire_overtaken


@dataclass(frozen=True)
class VersionSummary:
    version: int
    digest: str
    ref: str
    state: str


@dataclass(frozen=True)
class DeploymentView:
    deployment: Deployment
    namespace: str
    adapter: str
    base: str
    revision: DeploymentRevision
    stable: VersionSummary | None
    candidate: VersionSummary | None


def create_deployment(
    session: Session, *, actor: Actor, name: str, base: str, adapter: str
) -> DeploymentView:
    """Create deployment ``name`` bound to base ``NAME@REV`` and adapter ``NS/NAME``; revision 1
    has no stable version yet (the first approved promotion sets it)."""
    refs.deployment_name(name)
    base_ref = refs.parse_base_ref(base)
    adapter_ref = refs.parse_adapter_ref(adapter)
    ns, adapter_row = get_adapter(
        session,
        namespace=adapter_ref.namespace,
        name=adapter_ref.name,
        actor=actor,
        action="create_deployment",
    )
    base_version = get_base_version(
        session, actor=actor, name=base_ref.name, revision=base_ref.revision
    ).version
    if session.scalar(select(Deployment.id).where(Deployment.name == name)) is not None:
        raise DeploymentExists("deployment exists", context={"deployment": name})
    deployment = Deployment(
        id=uuid.uuid4(),
        name=name,
        namespace_id=ns.id,
        adapter_id=adapter_row.id,
        base_model_version_id=base_version.id,
        current_revision=0,
        created_by_id=actor.id,
    )
    try:
        with session.begin_nested():
            session.add(deployment)
            session.flush()
    except IntegrityError as exc:
        raise DeploymentExists("deployment exists", context={"deployment": name}) from exc
    append_revision(
        session,
        actor=actor,
        deployment=deployment,
        stable_version_id=None,
        reason=RevisionReason.created,
    )
    actor.audit(
        session,
        "deployment.create",
        f"deployment:{name}",
        after={"adapter": f"{ns.name}/{adapter_row.name}", "base": str(base_ref)},
    )
    return view(session, deployment)


_BY_NAME = (
    select(Deployment, Namespace.name)
    .join(Namespace, Namespace.id == Deployment.namespace_id)
    .where(Deployment.name == bindparam("name"))
)
_BY_NAME_FOR_UPDATE = _BY_NAME.with_for_update(of=Deployment).execution_options(
    populate_existing=True
)


def get_deployment(
    session: Session,
    *,
    actor: Actor,
    name: str,
    action: str = "read",
    for_update: bool = False,
) -> Deployment:
    """Deployment ``name`` with ``action`` authorized (``deployment_not_found`` when the caller
    may not read it)."""
    refs.deployment_name(name)
    stmt = _BY_NAME_FOR_UPDATE if for_update else _BY_NAME
    row = session.execute(stmt, {"name": name}).one_or_none()
    authorize(actor, name, None if row is None else row[1], action)
    assert row is not None
    found: Deployment = row[0]
    return found


def authorize(actor: Actor, name: str, namespace: str | None, action: str = "read") -> None:
    """``action`` on deployment ``name`` of ``namespace`` (None: there is no such deployment):
    ``deployment_not_found`` when it does not exist or the caller may not read it."""
    missing = DeploymentNotFound("no such deployment", context={"deployment": name})
    if namespace is None:
        raise missing
    actor.require(action, deployment_resource(name, namespace), hidden=missing)


def namespace_of(session: Session, deployment: Deployment) -> str:
    return session.get_one(Namespace, deployment.namespace_id).name


def current_revision(session: Session, deployment: Deployment) -> DeploymentRevision:
    return session.scalars(
        select(DeploymentRevision).where(
            DeploymentRevision.deployment_id == deployment.id,
            DeploymentRevision.revision == deployment.current_revision,
        )
    ).one()


def append_revision(
    session: Session,
    *,
    actor: Actor | None,
    deployment: Deployment,
    stable_version_id: uuid.UUID | None,
    candidate_version_id: uuid.UUID | None = None,
    share_bp: int = 0,
    salt: str | None = None,
    reason: str,
    detail: str = "",
    promotion_id: uuid.UUID | None = None,
) -> DeploymentRevision:
    """Append the next revision. The caller holds the deployment row lock (or created it).

    Pending promotion requests of the deployment that were made against another stable
    version than this revision's expire with it (``registry.promotions.expiry``), except
    ``promotion_id``'s own request."""
    deployment.current_revision += 1
    revision = DeploymentRevision(
        deployment_id=deployment.id,
        revision=deployment.current_revision,
        stable_version_id=stable_version_id,
        candidate_version_id=candidate_version_id,
        candidate_share_bp=share_bp,
        salt=salt or secrets.token_hex(16),
        hash_spec=HASH_SPEC_V1,
        reason=reason,
        detail=detail[:1000],
        actor_id=actor.id if actor is not None else None,
        promotion_id=promotion_id,
        effective_at=datetime.now(UTC),
    )
    session.add(revision)
    session.flush()
    # Every replica's routing cache polls this counter (not the revisions) to notice a change;
    # on PostgreSQL a NOTIFY (delivered at commit) wakes them at once.
    session.execute(
        update(RoutingEpoch).where(RoutingEpoch.id == 1).values(epoch=RoutingEpoch.epoch + 1)
    )
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_notify(ROUTING_CHANNEL, deployment.name)))
    _audit_revision(session, actor, deployment, revision)
    expire_overtaken(
        session,
        actor=actor,
        deployment=deployment,
        stable_version_id=stable_version_id,
        revision=revision.revision,
        keep=promotion_id,
    )
    return revision


def _audit_revision(
    session: Session, actor: Actor | None, deployment: Deployment, revision: DeploymentRevision
) -> None:
    """The audit record of a traffic change carries the versions' digests, not only ids."""
    digests = {
        v.id: (v.version, v.digest)
        for v in session.scalars(
            select(AdapterVersion).where(
                AdapterVersion.id.in_(
                    [i for i in (revision.stable_version_id, revision.candidate_version_id) if i]
                )
            )
        )
    }

    def arm(version_id: uuid.UUID | None) -> dict[str, object] | None:
        if version_id is None:
            return None
        number, digest = digests[version_id]
        return {"version": number, "digest": digest}

    after = {
        "revision": revision.revision,
        "stable": arm(revision.stable_version_id),
        "candidate": arm(revision.candidate_version_id),
        "share_bp": revision.candidate_share_bp,
        "salt": revision.salt,
        "reason": revision.reason,
        "detail": revision.detail,
        "promotion": str(revision.promotion_id) if revision.promotion_id else None,
    }
    resource = f"deployment:{deployment.name}"
    if actor is not None:
        actor.audit(session, "deployment.revision", resource, after=after)
    else:
        append(
            session,
            AuditEntry(
                action="deployment.revision",
                resource=resource,
                actor="system:controller",
                after=after,
            ),
        )


def status(session: Session, *, actor: Actor, name: str) -> DeploymentView:
    return view(session, get_deployment(session, actor=actor, name=name))


def list_deployments(
    session: Session, *, actor: Actor, after: str | None, limit: int
) -> list[DeploymentView]:
    from registry.catalog.namespaces import readable

    stmt = (
        select(Deployment)
        .join(Namespace, Namespace.id == Deployment.namespace_id)
        .where(Namespace.name.in_(sorted(readable(session, actor))))
        .order_by(Deployment.name)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(Deployment.name > after)
    return [view(session, d) for d in session.scalars(stmt)]


def history(
    session: Session,
    *,
    actor: Actor,
    name: str,
    before: int | None,
    limit: int,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[DeploymentRevision]:
    """Revisions newest first (keyset on the revision number), optionally within a time range
    of ``effective_at`` (``since`` inclusive, ``until`` exclusive)."""
    deployment = get_deployment(session, actor=actor, name=name)
    stmt = (
        select(DeploymentRevision)
        .where(DeploymentRevision.deployment_id == deployment.id)
        .order_by(DeploymentRevision.revision.desc())
        .limit(limit)
    )
    if before is not None:
        stmt = stmt.where(DeploymentRevision.revision < before)
    if since is not None:
        stmt = stmt.where(DeploymentRevision.effective_at >= since)
    if until is not None:
        stmt = stmt.where(DeploymentRevision.effective_at < until)
    return list(session.scalars(stmt))


def view(session: Session, deployment: Deployment) -> DeploymentView:
    ns = session.get_one(Namespace, deployment.namespace_id)
    adapter = session.get_one(Adapter, deployment.adapter_id)
    base_version = session.get_one(BaseModelVersion, deployment.base_model_version_id)
    base = session.get_one(BaseModel, base_version.base_model_id)
    revision = current_revision(session, deployment)
    prefix = f"{ns.name}/{adapter.name}"
    return DeploymentView(
        deployment=deployment,
        namespace=ns.name,
        adapter=prefix,
        base=f"{base.name}@{base_version.revision}",
        revision=revision,
        stable=summary(session, prefix, revision.stable_version_id),
        candidate=summary(session, prefix, revision.candidate_version_id),
    )


def summary(session: Session, prefix: str, version_id: uuid.UUID | None) -> VersionSummary | None:
    if version_id is None:
        return None
    v = session.get_one(AdapterVersion, version_id)
    return VersionSummary(
        version=v.version, digest=v.digest, ref=f"{prefix}@v{v.version}", state=v.state
    )


def version_numbers(session: Session, rows: list[DeploymentRevision]) -> dict[object, int]:
    """Version numbers of the stable/candidate versions that ``rows`` reference."""
    ids = {i for r in rows for i in (r.stable_version_id, r.candidate_version_id) if i}
    if not ids:
        return {}
    found = session.execute(
        select(AdapterVersion.id, AdapterVersion.version).where(AdapterVersion.id.in_(ids))
    ).all()
    return {r[0]: r[1] for r in found}
