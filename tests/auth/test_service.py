"""bootstrap_admin: the first admin and its token, once; authenticate resolves the token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.auth.service import authenticate, bootstrap_admin
from registry.db import migrate
from registry.db.engine import make_engine
from registry.db.session import Sessions, unit_of_work
from registry.errors import AdminExists, Unauthenticated
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


def test_bootstrap_creates_one_admin_only(sessions: Sessions) -> None:
    with unit_of_work(sessions.write) as session:
        token = bootstrap_admin(session, name="root")
    with unit_of_work(sessions.read) as session:
        principal = authenticate(session, token=token)
    assert (principal.name, principal.role) == ("root", "admin")
    with pytest.raises(AdminExists), unit_of_work(sessions.write) as session:
        bootstrap_admin(session, name="second")


def test_unknown_token_is_unauthenticated(sessions: Sessions) -> None:
    with pytest.raises(Unauthenticated), unit_of_work(sessions.read) as session:
        authenticate(session, token="ar_" + "B" * 43)
