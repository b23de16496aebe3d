"""Readiness probe of the database (kept out of the api package: it runs SQL)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


def check_database(session: Session) -> None:
    session.execute(text("SELECT 1"))
