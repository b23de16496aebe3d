"""Queries of deployments, revisions, rollouts, controller decisions and serving reports (and
the catalog names and digests they show). No authorization and no audit here: the services
(``service``, ``rollout_records``, ``reports``, and above them ``registry.promotions`` and
``registry.traffic``) do both and use these."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, bindparam, func, select, update
from sqlalchemy.orm import Session, aliased

from registry.catalog.models import Adapter, AdapterVersion, BaseModel, BaseModelVersion, Namespace
from registry.db.keyset import newest_first_after
from registry.deployments.models import (
    ROUTING_CHANNEL,
    Deployment,
    DeploymentRevision,
    Rollout,
    RolloutDecision,
    RolloutState,
    RoutingEpoch,
    ServingReport,
)

_BY_NAME = (
    select(Deployment, Namespace.name)
    .join(Namespace, Namespace.id == Deployment.namespace_id)
    .where(Deployment.name == bindparam("name"))
)
_BY_NAME_FOR_UPDATE = _BY_NAME.with_for_update(of=Deployment).execution_options(
    populate_existing=True
)


class DeploymentRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def by_name(self, name: str, *, for_update: bool = False) -> tuple[Deployment, str] | None:
        """The deployment called ``name`` with its namespace's name (row-locked when
        ``for_update``)."""
        stmt = _BY_NAME_FOR_UPDATE if for_update else _BY_NAME
        row = self.session.execute(stmt, {"name": name}).one_or_none()
        return None if row is None else (row[0], row[1])

    def name_taken(self, name: str) -> bool:
        return self.session.scalar(select(Deployment.id).where(Deployment.name == name)) is not None

    def lock(self, deployment_id: uuid.UUID) -> Deployment:
        """The deployment, row-locked and read again (every change of its traffic holds it)."""
        return self.session.scalars(
            select(Deployment)
            .where(Deployment.id == deployment_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()

    def list_page(
        self, namespaces: Collection[str], *, after: str | None, limit: int
    ) -> list[Deployment]:
        """Deployments of ``namespaces`` by name (keyset: names after ``after``)."""
        stmt = (
            select(Deployment)
            .join(Namespace, Namespace.id == Deployment.namespace_id)
            .where(Namespace.name.in_(sorted(namespaces)))
            .order_by(Deployment.name)
            .limit(limit)
        )
        if after is not None:
            stmt = stmt.where(Deployment.name > after)
        return list(self.session.scalars(stmt))

    def bump_routing_epoch(self, name: str) -> None:
        """Every replica's routing cache polls this counter (not the revisions) to notice a
        change; on PostgreSQL a NOTIFY (delivered at commit) wakes them at once."""
        self.session.execute(
            update(RoutingEpoch).where(RoutingEpoch.id == 1).values(epoch=RoutingEpoch.epoch + 1)
        )
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(select(func.pg_notify(ROUTING_CHANNEL, name)))

    def version_digests(
        self, version_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[int, str]]:
        """Version number and digest of each of ``version_ids``."""
        rows = self.session.execute(
            select(AdapterVersion.id, AdapterVersion.version, AdapterVersion.digest).where(
                AdapterVersion.id.in_(list(version_ids))
            )
        )
        return {vid: (number, digest) for vid, number, digest in rows}

    def version_numbers(self, version_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, int]:
        found = self.session.execute(
            select(AdapterVersion.id, AdapterVersion.version).where(
                AdapterVersion.id.in_(version_ids)
            )
        ).all()
        return {r[0]: r[1] for r in found}


def _revision(deployment_id: uuid.UUID, number: int) -> Select[DeploymentRevision]:
    return select(DeploymentRevision).where(
        DeploymentRevision.deployment_id == deployment_id, DeploymentRevision.revision == number
    )


class RevisionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def current(self, deployment: Deployment) -> DeploymentRevision:
        return self.session.scalars(_revision(deployment.id, deployment.current_revision)).one()

    def get(self, deployment_id: uuid.UUID, number: int) -> DeploymentRevision | None:
        return self.session.scalars(_revision(deployment_id, number)).one_or_none()

    def add(self, revision: DeploymentRevision) -> DeploymentRevision:
        self.session.add(revision)
        self.session.flush()
        return revision

    def previous_stable(self, current: DeploymentRevision) -> DeploymentRevision | None:
        """The newest earlier revision whose stable version differs from ``current``'s."""
        return self.session.scalars(
            select(DeploymentRevision)
            .where(
                DeploymentRevision.deployment_id == current.deployment_id,
                DeploymentRevision.revision < current.revision,
                DeploymentRevision.stable_version_id.is_not(None),
                DeploymentRevision.stable_version_id != current.stable_version_id,
            )
            .order_by(DeploymentRevision.revision.desc())
            .limit(1)
        ).first()

    def history_page(
        self,
        deployment_id: uuid.UUID,
        *,
        before: int | None,
        limit: int,
        since: datetime | None,
        until: datetime | None,
    ) -> list[DeploymentRevision]:
        """Revisions newest first (keyset on the number), ``effective_at`` in [since, until)."""
        stmt = (
            select(DeploymentRevision)
            .where(DeploymentRevision.deployment_id == deployment_id)
            .order_by(DeploymentRevision.revision.desc())
            .limit(limit)
        )
        if before is not None:
            stmt = stmt.where(DeploymentRevision.revision < before)
        if since is not None:
            stmt = stmt.where(DeploymentRevision.effective_at >= since)
        if until is not None:
            stmt = stmt.where(DeploymentRevision.effective_at < until)
        return list(self.session.scalars(stmt))


class RolloutRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def running(self, deployment_id: uuid.UUID) -> Rollout | None:
        return self.session.scalars(
            select(Rollout)
            .where(Rollout.deployment_id == deployment_id, Rollout.state == RolloutState.running)
            .order_by(Rollout.created_at.desc())
            .limit(1)
        ).first()

    def running_ids(self) -> list[uuid.UUID]:
        """Every running rollout, oldest first (the controller's round)."""
        return list(
            self.session.scalars(
                select(Rollout.id)
                .where(Rollout.state == RolloutState.running)
                .order_by(Rollout.created_at)
            )
        )

    def latest_for(
        self, deployment_id: uuid.UUID, candidate_id: uuid.UUID | None
    ) -> Rollout | None:
        """The newest rollout of ``candidate_id`` on the deployment, whatever its state."""
        return self.session.scalars(
            select(Rollout)
            .where(
                Rollout.deployment_id == deployment_id,
                Rollout.candidate_version_id == candidate_id,
            )
            .order_by(Rollout.created_at.desc())
            .limit(1)
        ).first()

    def decisions_page(
        self, deployment_id: uuid.UUID, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[RolloutDecision]:
        """Decisions on the deployment's rollouts, newest first (keyset on (decided_at, id))."""
        stmt = (
            select(RolloutDecision)
            .join(Rollout, Rollout.id == RolloutDecision.rollout_id)
            .where(Rollout.deployment_id == deployment_id)
            .order_by(RolloutDecision.decided_at.desc(), RolloutDecision.id.desc())
            .limit(limit)
        )
        if after is not None:
            stmt = stmt.where(
                newest_first_after(RolloutDecision.decided_at, RolloutDecision.id, after)
            )
        return list(self.session.scalars(stmt))


class ReportRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def for_revision(self, deployment_id: uuid.UUID, revision: int) -> list[ServingReport]:
        """The reports of one revision (both arms), oldest first."""
        return list(
            self.session.scalars(
                select(ServingReport)
                .where(
                    ServingReport.deployment_id == deployment_id,
                    ServingReport.revision == revision,
                )
                .order_by(ServingReport.created_at)
            )
        )

    def stable_baseline(
        self, current: DeploymentRevision, need: int
    ) -> tuple[int, list[ServingReport]] | None:
        """The newest revision before ``current`` whose stable arm, serving ``current``'s
        stable version, holds at least ``need`` requests, with those reports (None: none)."""
        stable_id = current.stable_version_id
        earlier = self.session.scalar(
            select(ServingReport.revision)
            .where(
                ServingReport.deployment_id == current.deployment_id,
                ServingReport.arm == "stable",
                ServingReport.adapter_version_id == stable_id,
                ServingReport.revision < current.revision,
            )
            .group_by(ServingReport.revision)
            .having(func.sum(ServingReport.requests) >= need)
            .order_by(ServingReport.revision.desc())
            .limit(1)
        )
        if earlier is None:
            return None
        baseline = self.session.scalars(
            select(ServingReport)
            .where(
                ServingReport.deployment_id == current.deployment_id,
                ServingReport.revision == earlier,
                ServingReport.arm == "stable",
                ServingReport.adapter_version_id == stable_id,
            )
            .order_by(ServingReport.created_at)
        ).all()
        return earlier, list(baseline)


# --- served at T: Core statements, built once ----------------------------------------------
# Auditors replay many of these; building a select() costs more in Python than running it, and
# SQLAlchemy caches the compiled forms. Two statements rather than one: joined into one (a
# correlated subquery for the revision), PostgreSQL spent more time planning the nine-table
# statement than the round trip saved.
_STABLE = aliased(AdapterVersion)
_CANDIDATE = aliased(AdapterVersion)
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


def deployment_named(conn: Connection, name: str) -> Row[*tuple[Any, ...]] | None:
    """The deployment with its namespace, adapter and base names (Core row; one statement)."""
    return conn.execute(_DEPLOYMENT, {"name": name}).one_or_none()


def revision_at(
    conn: Connection, deployment_id: uuid.UUID, at: datetime
) -> Row[*tuple[Any, ...]] | None:
    """The revision effective at ``at`` with both versions' numbers and digests (Core row)."""
    return conn.execute(_REVISION_AT, {"deployment_id": deployment_id, "at": at}).first()
