"""Where an imported version came from on an MLflow tracking server."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from registry.db.base import Base, CreatedAtMixin, IdMixin
from registry.db.types import JSONType


class MlflowImport(IdMixin, CreatedAtMixin, Base):
    """One MLflow source imported into one adapter. ``location`` (the resolved artifact folder:
    ``runs/<id>/<path>`` or ``logged-models/<id>/<path>``) is the idempotency key with the
    adapter and the server: importing it again answers the same version. ``metrics`` keeps the
    provenance of each evaluation recorded from the run: key, value, step, timestamp."""

    __tablename__ = "mlflow_imports"
    __table_args__ = (
        UniqueConstraint("adapter_id", "tracking_server", "location"),
        Index("ix_mlflow_imports_version", "adapter_version_id"),
    )

    adapter_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("adapters.id"))
    adapter_version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("adapter_versions.id", ondelete="CASCADE")
    )
    tracking_server: Mapped[str] = mapped_column(String(512))
    source_uri: Mapped[str] = mapped_column(String(1024))
    location: Mapped[str] = mapped_column(String(1024))
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    model_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(300), nullable=True)
    artifact_path: Mapped[str] = mapped_column(String(1024))
    files: Mapped[Any] = mapped_column(JSONType)
    metrics: Mapped[Any] = mapped_column(JSONType)
    imported_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("principals.id"))
