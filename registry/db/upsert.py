"""INSERT ... ON CONFLICT DO NOTHING on both dialects (both support the same clause)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from registry.db.base import Base


def insert_ignore(
    session: Session, model: type[Base], rows: list[dict[str, Any]], *, index_elements: list[str]
) -> None:
    """Insert rows, skipping those whose ``index_elements`` already exist (no error, no lock wait
    beyond the conflicting row's)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    # One statement whatever the rows (executemany; insertmanyvalues batches it into one round
    # trip), so SQLAlchemy compiles it once per model instead of once per row count.
    stmt = module.insert(model).on_conflict_do_nothing(index_elements=index_elements)
    session.execute(stmt, rows)
