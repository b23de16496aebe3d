"""Principals (humans and service accounts) and their API tokens."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from registry.db.base import Base, CreatedAtMixin, IdMixin
from registry.db.types import JSONType, UTCDateTime


class PrincipalKind(StrEnum):
    human = "human"
    service = "service"


class Role(StrEnum):
    viewer = "viewer"
    developer = "developer"
    approver = "approver"
    operator = "operator"
    admin = "admin"
    auditor = "auditor"


class Principal(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "principals"

    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default=PrincipalKind.human)
    role: Mapped[str] = mapped_column(String(16), default=Role.viewer)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The CI login (e.g. GitHub ``actor``) of the human behind this principal, lower-cased:
    # four-eyes refuses them as approver of versions their CI runs registered.
    ci_identity: Mapped[str | None] = mapped_column(String(128), nullable=True)


class PrincipalNamespace(Base):
    """A principal's membership of a namespace (what its role applies to)."""

    __tablename__ = "principal_namespaces"

    principal_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("principals.id", ondelete="CASCADE"), primary_key=True
    )
    namespace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("namespaces.id", ondelete="CASCADE"), primary_key=True
    )


class ApiToken(IdMixin, CreatedAtMixin, Base):
    """An API token; only its sha256 is stored (tokens are 256-bit random, no salt needed)."""

    __tablename__ = "api_tokens"
    # Keyset pages of a principal's tokens, newest first (CI principals mint one per job).
    __table_args__ = (Index("ix_api_tokens_principal_created", "principal_id", "created_at", "id"),)

    principal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Actions this token may use (None = whatever the principal's policy allows).
    scopes: Mapped[Any] = mapped_column(JSONType, nullable=True)
    # Set on tokens minted from a CI OIDC token: the verified CI identity (stored on versions).
    ci_identity: Mapped[Any] = mapped_column(JSONType, nullable=True)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("principals.id", ondelete="SET NULL"), nullable=True
    )
