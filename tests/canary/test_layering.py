"""registry/canary is pure (no web framework, no database, no HTTP)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_layering import PKG, imports_of

FORBIDDEN = ("fastapi", "starlette", "sqlalchemy", "registry.db", "registry.api", "httpx")


@pytest.mark.parametrize("path", sorted((PKG / "canary").glob("*.py")), ids=lambda p: p.name)
def test_rollout_core_is_pure(path: Path) -> None:
    bad = {m for m in imports_of(path) if m.startswith(FORBIDDEN)}
    assert not bad, f"{path.name} imports {sorted(bad)}"
