"""Queries on the webhook tables (SQLAlchemy only; no rules)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.events.models import DeliveryStatus, WebhookDelivery, WebhookSubscription


class SubscriptionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: WebhookSubscription) -> WebhookSubscription:
        self.session.add(row)
        self.session.flush()
        return row

    def get(self, sub_id: uuid.UUID, *, for_update: bool = False) -> WebhookSubscription | None:
        stmt = select(WebhookSubscription).where(WebhookSubscription.id == sub_id)
        if for_update:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        return self.session.scalars(stmt).one_or_none()

    def listing(
        self,
        *,
        owner_id: uuid.UUID | None,
        before: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[WebhookSubscription]:
        """Newest first; ``owner_id`` None: everyone's."""
        stmt = select(WebhookSubscription)
        if owner_id is not None:
            stmt = stmt.where(WebhookSubscription.owner_id == owner_id)
        if before is not None:
            at, ident = before
            stmt = stmt.where(
                (WebhookSubscription.created_at < at)
                | ((WebhookSubscription.created_at == at) & (WebhookSubscription.id < ident))
            )
        stmt = stmt.order_by(WebhookSubscription.created_at.desc(), WebhookSubscription.id.desc())
        return list(self.session.scalars(stmt.limit(limit)))

    def enabled(self, *, for_update: bool = False) -> list[WebhookSubscription]:
        stmt = (
            select(WebhookSubscription)
            .where(WebhookSubscription.enabled.is_(True))
            .order_by(WebhookSubscription.created_at, WebhookSubscription.id)
        )
        if for_update:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        return list(self.session.scalars(stmt))

    def any_behind(self, seq: int) -> bool:
        """Whether an enabled subscription's cursor is before ``seq``."""
        stmt = select(WebhookSubscription.id).where(
            WebhookSubscription.enabled.is_(True), WebhookSubscription.cursor < seq
        )
        return self.session.scalars(stmt.limit(1)).first() is not None


class DeliveryRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: WebhookDelivery) -> WebhookDelivery:
        self.session.add(row)
        return row

    def get(self, delivery_id: uuid.UUID, *, for_update: bool = False) -> WebhookDelivery | None:
        stmt = select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
        if for_update:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        return self.session.scalars(stmt).one_or_none()

    def head(self, sub_id: uuid.UUID) -> WebhookDelivery | None:
        """The subscription's lowest-seq pending delivery: the only one that may be sent."""
        stmt = (
            select(WebhookDelivery)
            .where(
                WebhookDelivery.subscription_id == sub_id,
                WebhookDelivery.status == DeliveryStatus.pending,
            )
            .order_by(WebhookDelivery.audit_seq)
            .limit(1)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return self.session.scalars(stmt).first()

    def any_due(self, now: datetime) -> bool:
        """Whether a pending delivery of an enabled subscription is due."""
        stmt = (
            select(WebhookDelivery.id)
            .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
            .where(
                WebhookSubscription.enabled.is_(True),
                WebhookDelivery.status == DeliveryStatus.pending,
                WebhookDelivery.next_attempt_at <= now,
            )
        )
        return self.session.scalars(stmt.limit(1)).first() is not None

    def listing(
        self, sub_id: uuid.UUID, *, status: str | None, before_seq: int | None, limit: int
    ) -> list[WebhookDelivery]:
        """Newest event first."""
        stmt = select(WebhookDelivery).where(WebhookDelivery.subscription_id == sub_id)
        if status is not None:
            stmt = stmt.where(WebhookDelivery.status == status)
        if before_seq is not None:
            stmt = stmt.where(WebhookDelivery.audit_seq < before_seq)
        stmt = stmt.order_by(WebhookDelivery.audit_seq.desc())
        return list(self.session.scalars(stmt.limit(limit)))
