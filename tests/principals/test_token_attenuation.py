"""Token attenuation (issue 11, point 11): a minted token never has more scopes or a longer
lifetime than the token that minted it, for yourself or (admin) for another principal; omitted
fields are attenuated defaults, explicit ones beyond the caller are refused with
``403 token_exceeds_parent`` and change nothing. Checked as a property over the real HTTP app."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.auth.principal import AuthenticatedPrincipal
from registry.errors import TokenExceedsParent
from registry.policy.types import ACTIONS
from registry.principals.attenuation import UNSET, attenuate
from tests.factories.catalog import create_namespace
from tests.factories.governance import Who, auth, make_principal

Omitted = Literal["omitted"]
OMITTED: Omitted = "omitted"
# What every parent holds, so that it may see and manage the target principal at all (a token
# without ``read`` gets 404 for any principal: 404 before 403).
BASE_SCOPES = frozenset({"read", "manage_tokens"})


def mint(client: TestClient, headers: dict[str, str], **body: Any) -> Any:
    return client.post("/api/v1/tokens", json=body, headers=headers)


def when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def newest_token_id(client: TestClient, principal: str) -> str:
    items = client.get("/api/v1/tokens", params={"principal": principal, "limit": 1}).json()
    return str(items["items"][0]["id"])


class TestConcreteCases:
    """The two cases from the issue, and their neighbours."""

    def test_read_manage_tokens_token_cannot_mint_an_unscoped_token(
        self, client: TestClient
    ) -> None:
        dev = make_principal(client, "developer", [create_namespace(client)])
        parent = mint(client, dev.headers, scopes=["read", "manage_tokens"]).json()
        headers = auth(parent["token"])
        before = newest_token_id(client, dev.name)

        unscoped = mint(client, headers, scopes=None)
        wider = mint(client, headers, scopes=["read", "upload"])

        for r in (unscoped, wider):
            assert r.status_code == 403
            assert r.json()["error"] == "token_exceeds_parent"
            assert r.json()["context"]["reason"] == "scopes"
        assert wider.json()["context"]["not_held"] == ["upload"]
        assert newest_token_id(client, dev.name) == before  # nothing minted
        inherited = mint(client, headers)
        assert inherited.status_code == 201
        assert inherited.json()["scopes"] == ["manage_tokens", "read"]
        narrower = mint(client, headers, scopes=["read"])
        assert narrower.status_code == 201
        assert narrower.json()["scopes"] == ["read"]

    def test_one_day_token_cannot_mint_a_never_expiring_one(self, client: TestClient) -> None:
        dev = make_principal(client, "developer", [])
        parent = mint(client, dev.headers, ttl_days=1).json()
        headers = auth(parent["token"])
        parent_expires = when(parent["expires_at"])
        assert parent_expires is not None

        forever = mint(client, headers, ttl_days=None)
        longer = mint(client, headers, ttl_days=2)
        same_days = mint(client, headers, ttl_days=1)  # a day from now: after the parent

        for r in (forever, longer, same_days):
            assert r.status_code == 403
            assert r.json()["error"] == "token_exceeds_parent"
            assert r.json()["context"]["reason"] == "lifetime"
        assert forever.json()["context"]["requested_expires_at"] is None
        clamped = mint(client, headers)
        assert clamped.status_code == 201
        assert when(clamped.json()["expires_at"]) == parent_expires

    def test_refusal_is_audited_as_denied(self, client: TestClient) -> None:
        dev = make_principal(client, "developer", [])
        parent = mint(client, dev.headers, scopes=["read", "manage_tokens"]).json()

        assert mint(client, auth(parent["token"]), scopes=["upload"]).status_code == 403

        events = client.get(
            "/api/v1/audit/events",
            params={"actor": dev.name, "action": "authz.denied", "limit": 500},
        ).json()["items"]
        assert events[-1]["decision"] == {
            "allowed": False,
            "action": "manage_tokens",
            "policies": ["token-attenuation"],
        }
        assert events[-1]["after"] == {"reason": "scopes"}
        assert events[-1]["resource"] == f"principal:{dev.name}"

    def test_admin_token_is_bounded_when_minting_for_others(self, client: TestClient) -> None:
        admin = make_principal(client, "admin", [])
        dev = make_principal(client, "developer", [])
        scoped = mint(client, admin.headers, scopes=["read", "manage_tokens"], ttl_days=7).json()
        headers = auth(scoped["token"])

        unscoped = mint(client, headers, principal=dev.name, scopes=None)
        forever = mint(client, headers, principal=dev.name, ttl_days=None)
        ok = mint(client, headers, principal=dev.name, scopes=["read"], ttl_days=6)

        assert unscoped.json()["context"]["reason"] == "scopes"
        assert forever.json()["context"]["reason"] == "lifetime"
        assert ok.status_code == 201
        assert ok.json()["principal"] == dev.name
        # A 90-day admin token may not mint a never-expiring one even for someone else; the
        # unscoped, never-expiring bootstrap admin token may mint anything.
        assert mint(client, admin.headers, principal=dev.name, ttl_days=None).status_code == 403
        anything = mint(client, {}, principal=dev.name, ttl_days=None, scopes=None)
        assert anything.status_code == 201
        assert (anything.json()["scopes"], anything.json()["expires_at"]) == (None, None)


class TestCiCredentials:
    """Tokens from a CI OIDC credential carry its identity; only their own principal."""

    ci = AuthenticatedPrincipal(
        id=__import__("uuid").uuid4(),
        name="ci-bot",
        kind="service",
        role="developer",
        token_id=None,
        token_expires_at=datetime(2030, 1, 1).astimezone(),
        scopes=frozenset({"read", "upload", "manage_tokens"}),
        ci_identity={"publisher": "train", "namespaces": ["acme"], "actor": "alice"},
    )

    def test_child_of_a_ci_credential_keeps_the_identity_and_bounds(self) -> None:
        now = datetime(2029, 12, 31).astimezone()
        grant = attenuate(
            self.ci, for_self=True, scopes=UNSET, ttl_days=UNSET, now=now, default_days=90
        )
        assert grant.ci_identity == self.ci.ci_identity
        assert grant.scopes == ["manage_tokens", "read", "upload"]
        assert grant.expires_at == self.ci.token_expires_at

    def test_ci_credential_cannot_mint_for_another_principal(self) -> None:
        with pytest.raises(TokenExceedsParent) as excinfo:
            attenuate(
                self.ci,
                for_self=False,
                scopes=["read"],
                ttl_days=UNSET,
                now=datetime(2029, 12, 31).astimezone(),
                default_days=90,
            )
        assert excinfo.value.context["reason"] == "ci_identity"


# --- the property ------------------------------------------------------------------------------

ScopeRequest = list[str] | None | Omitted
TtlRequest = int | None | Omitted


@dataclass(frozen=True)
class Request:
    scopes: ScopeRequest
    ttl_days: TtlRequest

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.scopes != OMITTED:
            out["scopes"] = self.scopes
        if self.ttl_days != OMITTED:
            out["ttl_days"] = self.ttl_days
        return out


@dataclass(frozen=True)
class Parent:
    """A calling token: its secret, scopes (None: all), expiry, and ``days``: it expires
    ``days`` whole days after a moment less than a day ago (None: never)."""

    token: str
    scopes: frozenset[str] | None
    days: int | None
    expires_at: datetime | None


def expected_refusal(parent: Parent, request: Request) -> str | None:
    """The reason the server must refuse ``request`` from ``parent`` (None: must mint).

    Lifetimes: the parent's ``days`` count from a moment strictly before this request, so
    ``ttl_days`` equal to them already ends after the parent."""
    if (
        request.scopes != OMITTED
        and parent.scopes is not None
        and (request.scopes is None or not set(request.scopes) <= parent.scopes)
    ):
        return "scopes"
    if (
        request.ttl_days != OMITTED
        and parent.days is not None
        and (request.ttl_days is None or request.ttl_days >= parent.days)
    ):
        return "lifetime"
    return None


scope_sets = st.sets(st.sampled_from(ACTIONS), min_size=1).map(sorted)
requests = st.builds(
    Request,
    scopes=st.one_of(st.just(OMITTED), st.none(), scope_sets),
    ttl_days=st.one_of(st.just(OMITTED), st.none(), st.integers(1, 366)),
)
parent_scopes = st.one_of(st.none(), st.sets(st.sampled_from(ACTIONS)).map(BASE_SCOPES.union))
parent_days = st.one_of(st.none(), st.integers(1, 366))


@pytest.fixture
def principals(client: TestClient) -> tuple[Who, Who]:
    """A developer (the target) and an admin (who mints for it)."""
    return make_principal(client, "developer", []), make_principal(client, "admin", [])


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    scopes=parent_scopes,
    days=parent_days,
    for_other=st.booleans(),
    chain=st.lists(requests, min_size=1, max_size=3),
)
def test_minted_token_never_exceeds_its_parent(
    client: TestClient,
    principals: tuple[Who, Who],
    scopes: frozenset[str] | None,
    days: int | None,
    for_other: bool,
    chain: list[Request],
) -> None:
    """Each request of ``chain`` is sent with the token the previous one minted (the first with
    a token the root admin minted for the caller): every mint is within its parent, every
    refusal is ``token_exceeds_parent`` with the right reason and mints nothing."""
    dev, admin = principals
    caller = admin if for_other else dev
    made = mint(
        client,
        {},
        principal=caller.name,
        scopes=sorted(scopes) if scopes is not None else None,
        ttl_days=days,
    ).json()
    parent = Parent(made["token"], scopes, days, when(made["expires_at"]))
    for request in chain:
        body = request.body() | ({"principal": dev.name} if for_other else {})
        before = newest_token_id(client, dev.name)
        r = mint(client, auth(parent.token), **body)
        reason = expected_refusal(parent, request)
        if reason is not None:
            assert r.status_code == 403, (parent, request, r.text)
            assert r.json()["error"] == "token_exceeds_parent"
            assert r.json()["context"]["reason"] == reason
            assert newest_token_id(client, dev.name) == before
            return
        assert r.status_code == 201, (parent, request, r.text)
        child = r.json()
        child_scopes = frozenset(child["scopes"]) if child["scopes"] is not None else None
        child_expires = when(child["expires_at"])
        if parent.scopes is not None:
            assert child_scopes is not None
            assert child_scopes <= parent.scopes
        if parent.expires_at is not None:
            assert child_expires is not None
            assert child_expires <= parent.expires_at
        if request.scopes == OMITTED:
            assert child_scopes == parent.scopes
        if for_other:
            return  # the child is the developer's: it cannot mint for the developer as admin
        if request.ttl_days != OMITTED:
            days = request.ttl_days
        else:  # 90 days, or clamped to the parent's expiry (which began less than a day ago)
            days = 90 if parent.days is None else min(parent.days, 90)
        parent = Parent(child["token"], child_scopes, days, child_expires)
        if child_scopes is not None and not child_scopes >= BASE_SCOPES:
            return  # it may not manage tokens (or see its principal) at all


def test_the_days_bound_is_strict_for_the_default(client: TestClient) -> None:
    """A parent with N days mints the clamped default ending exactly when it ends."""
    dev = make_principal(client, "developer", [])
    parent = mint(client, dev.headers, ttl_days=30).json()
    child = mint(client, auth(parent["token"])).json()
    assert child["expires_at"] == parent["expires_at"]
    grandchild = mint(client, auth(child["token"]), ttl_days=29)
    assert grandchild.status_code == 201
    expires = when(grandchild.json()["expires_at"])
    parent_expires = when(parent["expires_at"])
    assert expires is not None
    assert parent_expires is not None
    assert expires <= parent_expires
    assert parent_expires - expires < timedelta(days=1)
