"""Console sessions (a signed-in browser, bound to the API token it signed in with) and the
OpenID Connect logins linked to principals."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, Uuid
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


class ConsoleLogin(IdMixin, CreatedAtMixin, Base):
    """A person at an OpenID Connect issuer (``issuer`` + the configured subject claim's value)
    who signs in to the console as ``principal_id``. Linked by an admin; never created by a
    sign-in, so an issuer's users get no access they were not given."""

    __tablename__ = "console_logins"
    __table_args__ = (
        UniqueConstraint("issuer", "subject", name="uq_console_logins_issuer_subject"),
        Index("ix_console_logins_principal", "principal_id"),
    )

    principal_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("principals.id", ondelete="CASCADE"), nullable=False
    )
    issuer: Mapped[str] = mapped_column(String(512), nullable=False)
    subject: Mapped[str] = mapped_column(String(256), nullable=False)
