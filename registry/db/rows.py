"""What every repository of rows with a uuid primary key starts with: add one, get one."""

from __future__ import annotations

import uuid
from typing import ClassVar, Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.db.base import Base

M = TypeVar("M", bound=Base)


class Rows(Generic[M]):
    """``add`` (flushed, so its defaults are set) and ``get`` by id, optionally locked for
    update (re-read from the database, not the session's cached copy)."""

    model: ClassVar[type[Base]]

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: M) -> M:
        self.session.add(row)
        self.session.flush()
        return row

    def get(self, row_id: uuid.UUID, *, for_update: bool = False) -> M | None:
        stmt = select(self.model).where(self.model.id == row_id)  # type: ignore[attr-defined]
        if for_update:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        row: M | None = self.session.scalars(stmt).one_or_none()  # type: ignore[assignment]
        return row
