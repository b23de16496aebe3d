"""Readiness probe of the database (kept out of the api package: it runs SQL)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from registry.db.migrate import SchemaOutOfDate


def check_database(session: Session, *, expected_heads: frozenset[str]) -> None:
    """The database answers and is still at the schema this process was started for (a
    replica left behind by a newer migration must report not ready)."""
    current = set(session.scalars(text("SELECT version_num FROM alembic_version")))
    if current != expected_heads:
        raise SchemaOutOfDate(
            "the database schema changed under this server",
            context={"current": sorted(current), "required": sorted(expected_heads)},
        )
