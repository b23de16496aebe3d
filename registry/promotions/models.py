"""Promotion requests and approvals.

Four-eyes lives in the data model as well as in policy and in the service: an approval row
carries copies of the request's requester and registrant (tied to the request by a composite
foreign key, so they cannot be made up) and CHECK constraints refuse an approver who is either,
or who owns the CI identity that registered the version. One approval per approver per request.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    inspect,
)
from sqlalchemy.orm import Mapped, mapped_column

from registry.db.base import Base, CreatedAtMixin, IdMixin
from registry.db.types import JSONType, UTCDateTime


class PromotionState(StrEnum):
    blocked = "blocked"  # gates failed; nothing to approve
    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    expired = "expired"
    cancelled = "cancelled"
    rolling_out = "rolling_out"
    completed = "completed"
    rolled_back = "rolled_back"


OPEN_STATES = frozenset({PromotionState.pending})


class PromotionRequest(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "promotion_requests"
    __table_args__ = (
        # Target of the approvals' composite foreign key (see module docstring).
        UniqueConstraint("id", "requested_by_id", "registered_by_id", name="four_eyes_key"),
        Index("ix_promotion_requests_deployment_created", "deployment_id", "created_at"),
        Index("ix_promotion_requests_state", "state"),
    )

    deployment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE")
    )
    adapter_version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("adapter_versions.id"))
    requested_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("principals.id"))
    registered_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("principals.id"))
    ci_actor: Mapped[str | None] = mapped_column(String(128), nullable=True)
    state: Mapped[str] = mapped_column(String(16))
    gates: Mapped[Any] = mapped_column(JSONType)
    gates_passed: Mapped[bool] = mapped_column(Boolean)
    policy_digest: Mapped[str] = mapped_column(String(71))
    required_approvals: Mapped[int] = mapped_column(Integer)
    # The rollout plan an approval starts: its name, and the whole plan (rollout.yaml's shape)
    # as it was when requested, whether named or sent with the request. Frozen (see below);
    # NULL only for requests made before plans were stored (the first approval fills it in).
    plan_name: Mapped[str] = mapped_column(String(64), default="canary", server_default="canary")
    plan_spec: Mapped[Any] = mapped_column(JSONType, nullable=True)
    stable_version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("adapter_versions.id"), nullable=True
    )
    override_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    overridden_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("principals.id"), nullable=True
    )
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Why it was rejected (the requester's ``reason`` stays as written).
    decision_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revision: Mapped[int | None] = mapped_column(Integer, nullable=True)


class PromotionApproval(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "promotion_approvals"
    __table_args__ = (
        UniqueConstraint("request_id", "approver_id"),
        ForeignKeyConstraint(
            ["request_id", "requester_id", "registrant_id"],
            [
                "promotion_requests.id",
                "promotion_requests.requested_by_id",
                "promotion_requests.registered_by_id",
            ],
            ondelete="CASCADE",
            name="fk_promotion_approvals_request_four_eyes",
        ),
        CheckConstraint(
            "approver_id <> requester_id AND approver_id <> registrant_id",
            name="not_requester_nor_registrant",
        ),
        CheckConstraint(
            "approver_ci_identity IS NULL OR registrant_ci_actor IS NULL "
            "OR approver_ci_identity <> registrant_ci_actor",
            name="not_ci_identity_owner",
        ),
    )

    request_id: Mapped[uuid.UUID] = mapped_column()
    approver_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("principals.id"))
    requester_id: Mapped[uuid.UUID] = mapped_column()
    registrant_id: Mapped[uuid.UUID] = mapped_column()
    approver_ci_identity: Mapped[str | None] = mapped_column(String(128), nullable=True)
    registrant_ci_actor: Mapped[str | None] = mapped_column(String(128), nullable=True)
    comment: Mapped[str] = mapped_column(Text, default="")


class FrozenPlanChanged(RuntimeError):
    """A code path tried to change a promotion request's stored rollout plan (a bug)."""


@event.listens_for(PromotionRequest, "before_update")
def _plan_is_frozen(_mapper: object, _connection: object, target: PromotionRequest) -> None:
    """The plan an approver saw (and whose digest an approval binds) never changes once stored:
    a flush that would change ``plan_name``, or a stored ``plan_spec``, fails."""
    attrs = inspect(target).attrs
    if attrs.plan_name.history.deleted or any(
        old is not None for old in attrs.plan_spec.history.deleted
    ):
        raise FrozenPlanChanged(f"promotion request {target.id}: its rollout plan is frozen")
