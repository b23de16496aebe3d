"""Queries for MLflow import records."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from registry.catalog.models import AdapterVersion
from registry.db.rows import Rows
from registry.mlflow_import.models import MlflowImport


class MlflowImportRepository(Rows[MlflowImport]):
    model = MlflowImport

    def find(self, adapter_id: uuid.UUID, server: str, location: str) -> MlflowImport | None:
        stmt = select(MlflowImport).where(
            MlflowImport.adapter_id == adapter_id,
            MlflowImport.tracking_server == server,
            MlflowImport.location == location,
        )
        return self.session.scalars(stmt).one_or_none()

    def of_version(self, version_id: uuid.UUID) -> list[MlflowImport]:
        stmt = (
            select(MlflowImport)
            .where(MlflowImport.adapter_version_id == version_id)
            .order_by(MlflowImport.created_at, MlflowImport.id)
        )
        return list(self.session.scalars(stmt))

    def version_number(self, version_id: uuid.UUID) -> int | None:
        stmt = select(AdapterVersion.version).where(AdapterVersion.id == version_id)
        return self.session.scalars(stmt).one_or_none()
