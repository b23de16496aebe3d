"""OpenID Connect logins linked to principals: the people who sign in to the web console
through the organisation's issuer, and the principal each one acts as."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from registry.db.base import Base, CreatedAtMixin, IdMixin


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
