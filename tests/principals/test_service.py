"""Administration of principals below the HTTP API: minting a token for a principal, service
principals bound to namespaces (CI publishers), and a page's memberships in one query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from registry.auth.models import ApiToken, Principal, PrincipalKind, Role
from registry.auth.service import authenticate
from registry.auth.tokens import hash_token
from registry.catalog.models import Namespace
from registry.db.session import Sessions, unit_of_work
from registry.errors import BadRequest, NamespaceNotFound
from registry.principals.repository import PrincipalRepository, memberships, namespace_names
from registry.principals.service import ensure_service_principal, issue_token


def _namespaces(sessions: Sessions, *names: str) -> None:
    with unit_of_work(sessions.write) as session:
        session.add_all([Namespace(name=n) for n in names])


def test_issued_token_authenticates_and_only_its_hash_is_stored(sessions: Sessions) -> None:
    with unit_of_work(sessions.write) as session:
        principal = PrincipalRepository(session).add(
            Principal(name="ci", kind=PrincipalKind.service, role=Role.developer)
        )
        before = datetime.now(UTC)
        token = issue_token(session, principal_id=principal.id, name="job", ttl_days=2)
        after = datetime.now(UTC)
    with unit_of_work(sessions.read) as session:
        caller = authenticate(session, token=token)
        stored = session.scalars(select(ApiToken.token_hash)).all()
    assert (caller.name, caller.kind, caller.role, caller.scopes) == (
        "ci",
        "service",
        "developer",
        None,
    )
    assert caller.token_expires_at is not None
    assert before + timedelta(days=2) <= caller.token_expires_at <= after + timedelta(days=2)
    assert stored == [hash_token(token)]
    assert token not in stored


def test_service_principal_gains_memberships_and_humans_are_refused(sessions: Sessions) -> None:
    _namespaces(sessions, "nlp", "vision", "audio")
    with unit_of_work(sessions.write) as session:
        first = ensure_service_principal(session, name="publisher", namespaces=["nlp"])
        again = ensure_service_principal(session, name="publisher", namespaces=["vision", "nlp"])
        assert again.id == first.id
        assert (again.kind, again.role) == ("service", "developer")
        assert namespace_names(session, first.id) == ["nlp", "vision"]
        PrincipalRepository(session).add(
            Principal(name="alice", kind=PrincipalKind.human, role=Role.admin)
        )
    with pytest.raises(BadRequest), unit_of_work(sessions.write) as session:
        ensure_service_principal(session, name="alice", namespaces=["nlp"])
    with pytest.raises(NamespaceNotFound), unit_of_work(sessions.write) as session:
        ensure_service_principal(session, name="publisher", namespaces=["missing"])
    with unit_of_work(sessions.read) as session:
        principal = PrincipalRepository(session).get_by_name("publisher")
        assert principal is not None
        assert namespace_names(session, principal.id) == ["nlp", "vision"]


def test_memberships_of_a_page_in_one_call(sessions: Sessions) -> None:
    _namespaces(sessions, "b-team", "a-team")
    with unit_of_work(sessions.write) as session:
        one = ensure_service_principal(session, name="one", namespaces=["b-team", "a-team"])
        two = ensure_service_principal(session, name="two", namespaces=["b-team"])
        none = ensure_service_principal(session, name="none", namespaces=[])
        ids = [one.id, two.id, none.id]
    with unit_of_work(sessions.read) as session:
        page = memberships(session, ids)
        assert memberships(session, []) == {}
    assert page == {ids[0]: ["a-team", "b-team"], ids[1]: ["b-team"], ids[2]: []}
