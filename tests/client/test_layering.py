"""The client-side Router needs neither the server nor the database (it shares only the pure
rollout core with the server)."""

from __future__ import annotations

from tests.canary.test_layering import FORBIDDEN
from tests.test_layering import PKG, imports_of


def test_router_needs_no_server_code() -> None:
    bad = {m for m in imports_of(PKG / "client" / "router.py") if m.startswith(FORBIDDEN[:5])}
    assert not bad, sorted(bad)
