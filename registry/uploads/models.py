"""Upload sessions and their staged files (the bytes live in the store under ``staging/<id>/``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from registry.db.base import Base, CreatedAtMixin, IdMixin
from registry.db.types import UTCDateTime


class UploadState(StrEnum):
    open = "open"
    committed = "committed"
    discarded = "discarded"


class UploadPurpose(StrEnum):
    adapter = "adapter"
    base_model = "base_model"


class UploadSession(IdMixin, CreatedAtMixin, Base):
    """Files being staged for one push; bytes live under ``staging/<id>/``."""

    __tablename__ = "upload_sessions"
    __table_args__ = (Index("ix_upload_sessions_expires_at", "expires_at"),)

    principal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(16), default=UploadPurpose.adapter)
    state: Mapped[str] = mapped_column(String(16), default=UploadState.open)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class UploadFile(IdMixin, CreatedAtMixin, Base):
    """One staged, hashed file of an upload session."""

    __tablename__ = "upload_files"
    __table_args__ = (UniqueConstraint("session_id", "name"),)

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("upload_sessions.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(128))
    part: Mapped[int] = mapped_column(Integer)
    staging_key: Mapped[str] = mapped_column(String(512))
    digest: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
