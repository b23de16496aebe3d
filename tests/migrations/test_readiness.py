"""/readyz turns 503 when the schema moves away from what the server started with."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from registry.app import create_app
from registry.db import migrate
from tests.fixtures.app import make_settings
from tests.fixtures.db import drop_database, new_database_url


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    url = new_database_url(tmp_path, "registry_ready")
    try:
        migrate.upgrade(url)
        yield url
    finally:
        drop_database(url)


def test_readyz_fails_when_schema_changes_under_the_server(db_url: str, tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(db_url, tmp_path / "a"))) as client:
        assert client.get("/readyz").status_code == 200
        engine = create_engine(db_url)
        try:
            with engine.begin() as conn:
                conn.execute(text("UPDATE alembic_version SET version_num = 'ffffffffffff'"))
        finally:
            engine.dispose()
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["checks"]["database"] == "schema_out_of_date"
        assert client.get("/healthz").status_code == 200
