"""bootstrap_admin: the first admin and its token, once; authenticate resolves the token."""

from __future__ import annotations

import pytest

from registry.auth.service import authenticate
from registry.db.session import Sessions, unit_of_work
from registry.errors import AdminExists, Unauthenticated
from registry.principals.service import bootstrap_admin


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
