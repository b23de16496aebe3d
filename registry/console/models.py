"""Console sessions: a signed-in browser, bound to the API token it signed in with."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from registry.db.base import Base, CreatedAtMixin, IdMixin
from registry.db.types import UTCDateTime


class ConsoleSession(IdMixin, CreatedAtMixin, Base):
    """Only the sha256 of the cookie's 256-bit random key is stored. The session lives no
    longer than its token; a revoked token, a disabled principal or sign-out ends it."""

    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_principal", "principal_id", "created_at"),)

    key_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    principal_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("principals.id", ondelete="CASCADE"), nullable=False
    )
    token_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("api_tokens.id", ondelete="CASCADE"), nullable=False
    )
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
