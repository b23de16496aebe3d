"""Keyset conditions shared by listings."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement
from sqlalchemy.orm import InstrumentedAttribute


def newest_first_after(
    created_at: InstrumentedAttribute[datetime],
    ident: InstrumentedAttribute[uuid.UUID],
    cursor: tuple[datetime, uuid.UUID],
) -> ColumnElement[bool]:
    """The rows that follow ``cursor`` (the last row of the previous page) in ``created_at
    DESC, id DESC`` order."""
    at, last = cursor
    return (created_at < at) | ((created_at == at) & (ident < last))
