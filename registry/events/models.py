"""Webhook subscriptions and their deliveries.

The audit log is the outbox: its ``seq`` is gap-free and follows commit order (an event's seq
is taken under the audit head's row lock, held until its transaction commits), so a
subscription's ``cursor`` (the last seq it has looked at) is all the state fan-out needs: every
event with a higher seq is either committed later or not yet visible, never skipped. Fan-out
turns the matching events into ``webhook_deliveries`` rows, one per (subscription, event), each
with the ``webhook_id`` that every retry and redelivery carries.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from registry.db.base import Base, CreatedAtMixin, IdMixin
from registry.db.types import JSONType, UTCDateTime


class DeliveryStatus(StrEnum):
    pending = "pending"  # waiting for its turn or its next attempt
    delivered = "delivered"  # the receiver answered 2xx
    failed = "failed"  # still failing after the give-up window; the next event goes on
    withheld = "withheld"  # the owner may no longer read the event's resource: never sent


class WebhookSubscription(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "webhook_subscriptions"
    __table_args__ = (Index("ix_webhook_subscriptions_owner", "owner_id", "created_at"),)

    url: Mapped[str] = mapped_column(String(2048))
    event_types: Mapped[Any] = mapped_column(JSONType)  # list of event type names
    namespace: Mapped[str | None] = mapped_column(String(128), nullable=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("principals.id"))
    # The signing secrets (whsec_<base64>): the server needs them in clear to sign. During a
    # rotation the previous one signs too (a second signature) until its grace ends.
    secret: Mapped[str] = mapped_column(String(128))
    previous_secret: Mapped[str | None] = mapped_column(String(128), nullable=True)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(256), nullable=True)
    # The last audit seq fan-out has looked at for this subscription.
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)


class WebhookDelivery(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "audit_seq"),
        # The head of a subscription's queue: its lowest pending seq.
        Index("ix_webhook_deliveries_queue", "subscription_id", "status", "audit_seq"),
    )

    subscription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_subscriptions.id"))
    audit_seq: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(64))
    webhook_id: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(512), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
