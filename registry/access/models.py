"""Versioned policy sets: the Cedar schema and policies plus the promotion gates, as applied.

The active set is the one with the highest version; applying a set adds a row (never edits one),
so which policies decided at any time can be reconstructed from the audit log's digests.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from registry.db.base import Base, CreatedAtMixin, IdMixin


class PolicySet(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "policy_sets"

    version: Mapped[int] = mapped_column(Integer, unique=True)
    digest: Mapped[str] = mapped_column(String(71))
    schema_text: Mapped[str] = mapped_column(Text)
    policies_text: Mapped[str] = mapped_column(Text)
    gates_text: Mapped[str] = mapped_column(Text)
    rollout_text: Mapped[str] = mapped_column(Text, default="", server_default="")
    source: Mapped[str] = mapped_column(String(1024), default="")
    applied_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("principals.id"), nullable=True
    )
