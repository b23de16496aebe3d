"""Stored answers of POST requests that carried an ``Idempotency-Key``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from registry.db.base import Base, CreatedAtMixin, IdMixin
from registry.db.types import JSONType, UTCDateTime


class IdempotencyRecord(IdMixin, CreatedAtMixin, Base):
    """Key + request fingerprint + the response, scoped to the calling principal.

    Written in the same transaction as the change it answers for, so a crash between the
    change and the record is impossible.
    """

    __tablename__ = "idempotency_records"
    __table_args__ = (
        UniqueConstraint("principal_id", "key"),
        Index("ix_idempotency_records_expires_at", "expires_at"),
    )

    principal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[Any] = mapped_column(JSONType)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
