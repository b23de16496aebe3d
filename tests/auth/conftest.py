"""A migrated database of its own for the authentication tests (real SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.db import migrate
from registry.db.engine import make_engine
from registry.db.session import Sessions
from registry.settings import DatabaseSettings
from tests.fixtures.db import drop_database, new_database_url


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[Sessions]:
    url = new_database_url(tmp_path, "registry_auth")
    engine = make_engine(DatabaseSettings(url=url))
    try:
        migrate.upgrade(url)
        yield Sessions(engine)
    finally:
        engine.dispose()
        drop_database(url)
