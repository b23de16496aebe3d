"""Shared helpers: the default authorizer and small builders of subjects and resources."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from registry.policy import CedarAuthorizer, Resource, Subject, load_default


@pytest.fixture(scope="session")
def authz() -> CedarAuthorizer:
    return CedarAuthorizer(load_default())


def subject(
    role: str,
    *,
    kind: str = "human",
    namespaces: Iterable[str] = ("acme",),
    ci: Iterable[str] = (),
    id: str | None = None,
) -> Subject:
    return Subject(
        id=id or f"id-{kind}-{role}",
        name=f"{kind}-{role}",
        kind=kind,
        role=role,
        namespaces=frozenset(namespaces),
        ci_identities=frozenset(ci),
    )


def promotion(
    *,
    namespace: str = "acme",
    requested_by: str = "id-someone",
    registered_by: str = "id-someone-else",
    ci_actor: str = "",
) -> Resource:
    return Resource(
        "Promotion",
        "promo-1",
        namespace,
        {"requested_by": requested_by, "registered_by": registered_by, "ci_actor": ci_actor},
    )
