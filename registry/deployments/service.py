"""Deployments: create, read, history, and appending revisions (the only way state changes).

A revision is never edited: promotions, rollouts and rollbacks each append one under the
deployment's row lock, so revision numbers have no gaps and two writers cannot both win. What
a new revision means for promotion requests (it expires those it overtakes) is decided above
this package, by whoever appends it (``registry.promotions``, ``registry.traffic``).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry import refs
from registry.access.actor import Actor, deployment_resource
from registry.audit.service import AuditEntry, append
from registry.canary.hashing import HASH_SPEC_V1
from registry.catalog.base_models import get_base_version
from registry.catalog.models import Adapter, AdapterVersion, BaseModel, BaseModelVersion, Namespace
from registry.catalog.queries import get_adapter
from registry.deployments.models import Deployment, DeploymentRevision
from registry.deployments.repository import DeploymentRepository, RevisionRepository
from registry.deployments.states import RevisionReason, transition_revision
from registry.errors import DeploymentExists, DeploymentNotFound


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
    if DeploymentRepository(session).name_taken(name):
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
        current=None,
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
    found = DeploymentRepository(session).by_name(name, for_update=for_update)
    authorize(actor, name, None if found is None else found[1], action)
    assert found is not None
    return found[0]


def lock_deployment(session: Session, deployment_id: uuid.UUID) -> Deployment:
    """The deployment, row-locked and read again: every change of its traffic holds this lock
    (an approval takes it before the request's)."""
    return DeploymentRepository(session).lock(deployment_id)


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
    return RevisionRepository(session).current(deployment)


def revision(session: Session, deployment: Deployment, number: int) -> DeploymentRevision | None:
    return RevisionRepository(session).get(deployment.id, number)


def previous_stable(session: Session, current: DeploymentRevision) -> DeploymentRevision | None:
    """The newest revision before ``current`` whose stable version differs from its own."""
    return RevisionRepository(session).previous_stable(current)


def append_revision(
    session: Session,
    *,
    actor: Actor | None,
    deployment: Deployment,
    current: DeploymentRevision | None,
    stable_version_id: uuid.UUID | None,
    candidate_version_id: uuid.UUID | None = None,
    share_bp: int = 0,
    salt: str | None = None,
    reason: str,
    detail: str = "",
    promotion_id: uuid.UUID | None = None,
) -> DeploymentRevision:
    """Append the revision that follows ``current`` (the deployment's current revision; None
    while it is created), audited; the move is checked by
    ``registry.deployments.states.transition_revision``. The caller holds the deployment row
    lock (or created it), and expires the promotion requests the revision overtakes
    (``registry.promotions.expiry.expire_overtaken``): every caller but ``create_deployment``
    lives above this package."""
    number = transition_revision(
        deployment,
        current,
        stable_version_id=stable_version_id,
        candidate_version_id=candidate_version_id,
    )
    revision = DeploymentRevision(
        deployment_id=deployment.id,
        revision=number,
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
    RevisionRepository(session).add(revision)
    DeploymentRepository(session).bump_routing_epoch(deployment.name)
    _audit_revision(session, actor, deployment, revision)
    return revision


def _audit_revision(
    session: Session, actor: Actor | None, deployment: Deployment, revision: DeploymentRevision
) -> None:
    """The audit record of a traffic change carries the versions' digests, not only ids."""
    digests = DeploymentRepository(session).version_digests(_version_ids([revision]))

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

    rows = DeploymentRepository(session).list_page(
        readable(session, actor), after=after, limit=limit
    )
    return [view(session, d) for d in rows]


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
    return RevisionRepository(session).history_page(
        deployment.id, before=before, limit=limit, since=since, until=until
    )


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
    ids = _version_ids(rows)
    if not ids:
        return {}
    return {k: v for k, v in DeploymentRepository(session).version_numbers(ids).items()}


def _version_ids(rows: list[DeploymentRevision]) -> set[uuid.UUID]:
    return {i for r in rows for i in (r.stable_version_id, r.candidate_version_id) if i}


def signal_routing_change(session: Session, reason: str) -> None:
    """Make every replica drop its routing tables and what it cached per caller, at commit (a
    change of access: registry.principals.lifecycle). ``reason`` is the NOTIFY payload."""
    DeploymentRepository(session).bump_routing_epoch(reason)
