"""A deployment is a named serving target bound to a base model version and an adapter; its
state is the newest of its immutable revisions (a rollback is a new revision, never an edit)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from registry.db.base import Base, CreatedAtMixin, IdMixin, utcnow
from registry.db.types import UTCDateTime

HASH_SPEC_V1 = "sha256-salt-key-v1"


class RevisionReason(StrEnum):
    created = "created"
    promotion = "promotion"
    step = "step"
    manual_rollout = "manual_rollout"
    manual_rollback = "manual_rollback"
    automatic_rollback = "automatic_rollback"


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
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(1000), default="")
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("principals.id"), nullable=True)
    promotion_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("promotion_requests.id"), nullable=True
    )
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
