"""The ``jobs`` table: one row per server-side maths job (merge, compose, aggregate).

A job is created ``queued``, claimed by a worker (``running``, its ``heartbeat_at`` refreshed
while it runs) and ends ``succeeded`` (``result``: the registered version), ``failed``
(``error``: the ``RegistryError``'s code, detail and context) or ``cancelled``. Its state moves
only through :mod:`registry.jobs.states`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from registry.db.base import Base, CreatedAtMixin, IdMixin
from registry.db.types import JSONType, UTCDateTime


class JobKind(StrEnum):
    merge = "merge"  # an adapter folded into its base: a new base model version
    compose = "compose"  # adapters of one base combined into a new adapter version
    aggregate = "aggregate"  # federated sites combined into a new adapter version
    verify = "verify"  # a direct upload's stored bytes hashed; its version made available


class JobState(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


FINISHED_STATES = frozenset({JobState.succeeded, JobState.failed, JobState.cancelled})


class Job(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "jobs"
    __table_args__ = (
        # The worker's claim: the oldest queued job (and the running ones, for staleness).
        Index("ix_jobs_state_created", "state", "created_at"),
        # Listings newest first: everyone's (admins) and one principal's.
        Index("ix_jobs_created", "created_at", "id"),
        Index("ix_jobs_creator_created", "created_by_id", "created_at", "id"),
        CheckConstraint("progress_done >= 0 AND progress_total >= 0", name="progress"),
    )

    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default=JobState.queued)
    # The request as accepted (inputs, method and its parameters).
    params: Mapped[Any] = mapped_column(JSONType)
    # ``NS/NAME`` of the adapter the result becomes a version of; ``NAME@REV`` for a merge.
    target: Mapped[str] = mapped_column(String(330))
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    # Succeeded: ``{"ref", "digest", "recipe"}``; failed: ``{"code", "detail", "context"}``.
    result: Mapped[Any] = mapped_column(JSONType, nullable=True)
    error: Mapped[Any] = mapped_column(JSONType, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("principals.id"))
    # What the creating token was limited to, kept so the worker acts with no more than it:
    # its scopes (null: unscoped) and its CI identity (trusted publishing), if any.
    scopes: Mapped[Any] = mapped_column(JSONType, nullable=True)
    ci_identity: Mapped[Any] = mapped_column(JSONType, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
