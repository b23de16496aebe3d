"""registry/experiments is pure statistics: the standard library at run time, numpy only for the
simulations, never scipy / statsmodels (test oracles), a database, HTTP or another package."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "registry" / "experiments"
ALLOWED_THIRD_PARTY = {"simulate.py": {"numpy"}}


def top_level_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted(PKG.glob("*.py")), ids=lambda p: p.name)
def test_imports_only_the_standard_library_and_itself(path: Path) -> None:
    allowed = ALLOWED_THIRD_PARTY.get(path.name, set())
    bad = sorted(
        m
        for m in top_level_imports(path)
        if not m.startswith("registry.experiments")
        and m.split(".")[0] not in allowed
        and m.split(".")[0] not in {"__future__", *sys.stdlib_module_names}
    )
    assert not bad, f"{path.name} imports {bad}"


def test_the_purity_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "x.py"
    module.write_text("import math\nfrom scipy import stats\nimport registry.db\n")
    assert top_level_imports(module) == {"math", "scipy", "registry.db"}
