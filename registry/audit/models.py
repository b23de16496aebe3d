"""Audit tables: the hash-chained events and the single-row head that serialises appends.

``audit_events.seq`` is assigned by :func:`registry.audit.service.append` (head.seq + 1 under the
head's row lock), never by the database: no sequence or identity exists on PostgreSQL, and on
SQLite the INTEGER primary key merely aliases the rowid. Rows are never updated or deleted
(triggers and privileges, migration ``c3a1f0e2b4d5``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from registry.db.base import Base, utcnow
from registry.db.types import JSONType, UTCDateTime

HEAD_ID = 1
GENESIS_HASH = "0" * 64

# BIGINT on PostgreSQL; plain INTEGER on SQLite, where only "INTEGER PRIMARY KEY" is the rowid.
SeqType = BigInteger().with_variant(Integer(), "sqlite")


class AuditEvent(Base):
    """One audit event; ``hash`` chains it to the event before (see ``canonical``)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_actor_seq", "actor", "seq"),
        Index("ix_audit_events_resource_seq", "resource", "seq"),
    )

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str | None] = mapped_column(String(128), nullable=True)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    action: Mapped[str] = mapped_column(String(128))
    resource: Mapped[str] = mapped_column(String(512))
    decision: Mapped[Any] = mapped_column(JSONType, nullable=True)
    before: Mapped[Any] = mapped_column(JSONType, nullable=True)
    after: Mapped[Any] = mapped_column(JSONType, nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """The chain's head (last seq and hash); its row lock serialises appends."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint(f"id = {HEAD_ID}", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
