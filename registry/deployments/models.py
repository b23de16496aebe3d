"""A deployment is a named serving target bound to a base model version and an adapter; its
state is the newest of its immutable revisions (a rollback is a new revision, never an edit)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from registry.canary.hashing import HASH_SPEC_V1
from registry.db.base import Base, CreatedAtMixin, IdMixin, utcnow
from registry.db.types import JSONType, UTCDateTime


class Deployment(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "deployments"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    namespace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("namespaces.id"))
    adapter_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("adapters.id"))
    base_model_version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("base_model_versions.id"))
    # Newest revision number; bumped under the row lock, so revisions have no gaps or races.
    current_revision: Mapped[int] = mapped_column(Integer, default=0)
    created_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("principals.id"))


class DeploymentRevision(IdMixin, Base):
    __tablename__ = "deployment_revisions"
    __table_args__ = (
        UniqueConstraint("deployment_id", "revision"),
        Index("ix_deployment_revisions_deployment_effective", "deployment_id", "effective_at"),
        CheckConstraint(
            "candidate_share_bp >= 0 AND candidate_share_bp <= 10000", name="share_range"
        ),
    )

    deployment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE")
    )
    revision: Mapped[int] = mapped_column(Integer)
    stable_version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("adapter_versions.id"), nullable=True
    )
    candidate_version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("adapter_versions.id"), nullable=True
    )
    candidate_share_bp: Mapped[int] = mapped_column(Integer, default=0)
    salt: Mapped[str] = mapped_column(String(64))
    hash_spec: Mapped[str] = mapped_column(String(32), default=HASH_SPEC_V1)
    reason: Mapped[str] = mapped_column(String(32))  # a states.RevisionReason
    detail: Mapped[str] = mapped_column(String(1000), default="")
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("principals.id"), nullable=True)
    promotion_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("promotion_requests.id"), nullable=True
    )
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RolloutState(StrEnum):
    running = "running"
    completed = "completed"
    rolled_back = "rolled_back"
    superseded = "superseded"


class Rollout(IdMixin, CreatedAtMixin, Base):
    """A candidate's progress through a rollout plan (steps of share and dwell time)."""

    __tablename__ = "rollouts"
    __table_args__ = (
        Index("ix_rollouts_state", "state"),
        Index("ix_rollouts_deployment_created", "deployment_id", "created_at"),
    )

    deployment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE")
    )
    promotion_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("promotion_requests.id"), nullable=True
    )
    candidate_version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("adapter_versions.id"))
    plan_name: Mapped[str] = mapped_column(String(64))
    plan: Mapped[Any] = mapped_column(JSONType)
    salt: Mapped[str] = mapped_column(String(64))
    step_index: Mapped[int] = mapped_column(Integer, default=0)
    step_started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    # Reports of the current step already analysed (a failure counts once per new evidence).
    reports_seen: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default=RolloutState.running)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RolloutDecision(IdMixin, Base):
    """One controller decision with its evidence (report ids and computed values)."""

    __tablename__ = "rollout_decisions"
    __table_args__ = (Index("ix_rollout_decisions_rollout_decided", "rollout_id", "decided_at"),)

    rollout_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("rollouts.id", ondelete="CASCADE"))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(200))
    step_index: Mapped[int] = mapped_column(Integer)
    revision: Mapped[int | None] = mapped_column(Integer, nullable=True)
    evidence: Mapped[Any] = mapped_column(JSONType)


class ServingReport(IdMixin, CreatedAtMixin, Base):
    """Traffic and error counts a serving replica reports for one arm of one revision."""

    __tablename__ = "serving_reports"
    __table_args__ = (
        Index("ix_serving_reports_deployment_revision_arm", "deployment_id", "revision", "arm"),
        CheckConstraint("requests >= 0 AND errors >= 0 AND errors <= requests", name="counts"),
    )

    deployment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE")
    )
    revision: Mapped[int] = mapped_column(Integer)
    arm: Mapped[str] = mapped_column(String(16))
    adapter_version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("adapter_versions.id"))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    requests: Mapped[int] = mapped_column(Integer)
    errors: Mapped[int] = mapped_column(Integer)
    latency_p50_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_p95_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    scores: Mapped[Any] = mapped_column(JSONType, nullable=True)
    # Experiment statistics, cumulative since the revision started, per source:
    # {"source", "units", "metrics": {name: {...}}} (registry.experiments.reports).
    stats: Mapped[Any] = mapped_column(JSONType, nullable=True)
    reported_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("principals.id"))


# The PostgreSQL NOTIFY channel every new revision signals (payload: the deployment's name).
ROUTING_CHANNEL = "registry_routing"


class RoutingEpoch(Base):
    """One row: bumped with every deployment revision, so each replica's routing cache can tell
    with one cheap read (every half second, not per request) that something changed."""

    __tablename__ = "routing_epoch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    epoch: Mapped[int] = mapped_column(BigInteger, default=0)
