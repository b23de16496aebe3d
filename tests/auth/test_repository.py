"""The per-request queries of authentication: a principal's current attributes, memberships
named through auth's own view of the catalog's ``namespaces`` table."""

from __future__ import annotations

from datetime import UTC, datetime

from registry.all_models import metadata
from registry.auth.models import Principal, PrincipalKind, PrincipalNamespace, Role
from registry.auth.repository import NAMESPACES, current_attributes
from registry.catalog.models import Namespace
from registry.db.session import Sessions, unit_of_work


def test_namespaces_view_names_the_catalog_table() -> None:
    """auth reads namespace names without importing the catalog: its two columns must be the
    catalog table's, with the same types (a rename there must fail here, not in production)."""
    real = metadata.tables[NAMESPACES.name]
    assert real is Namespace.__table__
    for col in NAMESPACES.c:
        assert col.name in real.c, col.name
        assert type(col.type) is type(real.c[col.name].type), col.name
    assert real.c.id.primary_key


def test_current_attributes_reads_memberships_and_hides_disabled(sessions: Sessions) -> None:
    with unit_of_work(sessions.write) as session:
        beta, alpha, other = (Namespace(name=n) for n in ("beta", "alpha", "other"))
        dev = Principal(name="dev", kind=PrincipalKind.human, role=Role.developer)
        loner = Principal(name="loner", kind=PrincipalKind.service, role=Role.viewer)
        session.add_all([beta, alpha, other, dev, loner])
        session.flush()
        session.add_all(
            [PrincipalNamespace(principal_id=dev.id, namespace_id=n.id) for n in (beta, alpha)]
        )
        dev.ci_identity = "octocat"
        dev_id, loner_id = dev.id, loner.id
    with unit_of_work(sessions.read) as session:
        found = current_attributes(session, dev_id)
        alone = current_attributes(session, loner_id)
    assert found is not None
    assert alone is not None
    assert (found.name, found.kind, found.role, found.ci_identity) == (
        "dev",
        "human",
        "developer",
        "octocat",
    )
    assert found.namespaces == ("alpha", "beta")
    assert (alone.name, alone.namespaces) == ("loner", ())
    with unit_of_work(sessions.write) as session:
        row = session.get(Principal, dev_id)
        assert row is not None
        row.disabled_at = datetime.now(UTC)
    with unit_of_work(sessions.read) as session:
        assert current_attributes(session, dev_id) is None
