"""A deployment bound to an MLflow registered model, and what the mirror last did there."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from registry.db.base import Base, CreatedAtMixin, IdMixin, utcnow
from registry.db.types import JSONType, UTCDateTime


class MlflowMirror(IdMixin, CreatedAtMixin, Base):
    """One binding per deployment. ``cursor`` is the last audit seq the worker handled for it;
    ``last_set`` maps each alias to the MLflow version the worker last left it on (None: it
    deleted it), the reference a drift is told against; ``last_drift`` the newest drift seen;
    ``lease_until`` keeps other replicas off a binding while one talks to MLflow."""

    __tablename__ = "mlflow_mirrors"

    deployment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), unique=True
    )
    tracking_server: Mapped[str] = mapped_column(String(512))
    model_name: Mapped[str] = mapped_column(String(300))
    stable_alias: Mapped[str] = mapped_column(String(255))
    candidate_alias: Mapped[str] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    last_set: Mapped[Any] = mapped_column(JSONType)
    last_drift: Mapped[Any] = mapped_column(JSONType, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(512), nullable=True)
    last_asserted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("principals.id"))
