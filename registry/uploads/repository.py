"""Queries for upload sessions and their files."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select

from registry.db.rows import Rows
from registry.uploads.models import UploadFile, UploadSession


class UploadRepository(Rows[UploadSession]):
    model = UploadSession

    def files(self, upload_id: uuid.UUID) -> list[UploadFile]:
        stmt = (
            select(UploadFile).where(UploadFile.session_id == upload_id).order_by(UploadFile.part)
        )
        return list(self.session.scalars(stmt))

    def add_file(self, upload_file: UploadFile) -> UploadFile:
        self.session.add(upload_file)
        self.session.flush()
        return upload_file

    def remove_file(self, upload_file: UploadFile) -> None:
        self.session.delete(upload_file)
        self.session.flush()

    def expired(self, before: datetime, limit: int = 1000) -> list[UploadSession]:
        stmt = (
            select(UploadSession)
            .where(UploadSession.expires_at < before)
            .order_by(UploadSession.expires_at)
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def delete(self, upload_ids: list[uuid.UUID]) -> None:
        if upload_ids:
            self.session.execute(delete(UploadSession).where(UploadSession.id.in_(upload_ids)))
