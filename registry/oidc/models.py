"""Trusted CI publishers and the single-use record of OIDC token ids (``jti``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from registry.db.base import Base, CreatedAtMixin, IdMixin
from registry.db.types import JSONType, UTCDateTime


class TrustedPublisher(IdMixin, CreatedAtMixin, Base):
    """Binds an OIDC issuer + audience + claim constraints to a service principal."""

    __tablename__ = "trusted_publishers"

    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="github")
    issuer: Mapped[str] = mapped_column(String(512), index=True)
    audience: Mapped[str] = mapped_column(String(256))
    repository: Mapped[str] = mapped_column(String(256))
    repository_owner_id: Mapped[str] = mapped_column(String(64))
    workflow_ref: Mapped[str] = mapped_column(String(512))
    ref: Mapped[str | None] = mapped_column(String(256), nullable=True)
    environment: Mapped[str | None] = mapped_column(String(128), nullable=True)
    require_protected_ref: Mapped[bool] = mapped_column(Boolean, default=True)
    principal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"))
    namespaces: Mapped[Any] = mapped_column(JSONType)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("principals.id", ondelete="SET NULL"), nullable=True
    )


class UsedOidcToken(IdMixin, Base):
    """One row per accepted OIDC token: the unique constraint makes ``jti`` single use even
    under 100 parallel uses (a read-then-write check would let several through)."""

    __tablename__ = "used_oidc_tokens"
    __table_args__ = (UniqueConstraint("issuer", "jti"),)

    issuer: Mapped[str] = mapped_column(String(512))
    jti: Mapped[str] = mapped_column(String(256))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime] = mapped_column(UTCDateTime)
