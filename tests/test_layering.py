"""Import contracts of STYLE.md §3.2, checked on the source (cheap, no import-linter needed)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "registry"


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def modules(pattern: str) -> list[Path]:
    return sorted(PKG.glob(pattern))


@pytest.mark.parametrize("path", modules("api/routes/*.py"), ids=lambda p: p.name)
def test_routes_use_no_sqlalchemy_and_no_repository(path: Path) -> None:
    bad = {m for m in imports_of(path) if m.startswith("sqlalchemy") or ".repository" in m}
    assert not bad, f"{path.name} imports {sorted(bad)}"


DOMAIN_PACKAGES = [
    "catalog",
    "storage",
    "auth",
    "idempotency",
    "access",
    "audit",
    "deployments",
    "oidc",
    "promotions",
]
SERVICE_PACKAGES = [*DOMAIN_PACKAGES, "validation", "policy"]


@pytest.mark.parametrize(
    "path",
    [p for pkg in SERVICE_PACKAGES for p in modules(f"{pkg}/*.py")],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_domain_code_never_imports_fastapi(path: Path) -> None:
    bad = {m for m in imports_of(path) if m.startswith(("fastapi", "starlette"))}
    assert not bad, f"{path} imports {sorted(bad)}"


@pytest.mark.parametrize("path", modules("validation/*.py"), ids=lambda p: p.name)
def test_validation_is_pure(path: Path) -> None:
    bad = {
        m
        for m in imports_of(path)
        if m.startswith(
            (
                "sqlalchemy",
                "registry.db",
                "registry.api",
                "registry.catalog",
                "registry.storage",
                "boto3",
                "httpx",
            )
        )
    }
    assert not bad, f"{path.name} imports {sorted(bad)}"


@pytest.mark.parametrize("path", modules("db/*.py"), ids=lambda p: p.name)
def test_db_imports_no_domain(path: Path) -> None:
    domains = tuple(f"registry.{pkg}" for pkg in DOMAIN_PACKAGES)
    bad = {m for m in imports_of(path) if m.startswith(domains)}
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_no_domain_imports_another_domains_repository() -> None:
    offenders = []
    for pkg in DOMAIN_PACKAGES:
        for path in modules(f"{pkg}/*.py"):
            for m in imports_of(path):
                if m.startswith("registry.") and ".repository" in m:
                    owner = m.split(".")[1]
                    if owner != pkg:
                        offenders.append(f"{pkg}/{path.name} -> {m}")
    assert not offenders, offenders


def test_commit_only_in_unit_of_work() -> None:
    allowed = {PKG / "db" / "session.py"}
    offenders = [
        str(p.relative_to(PKG))
        for p in PKG.rglob("*.py")
        if p not in allowed and ".commit()" in p.read_text()
    ]
    assert not offenders, offenders


ROUTES = "registry.api.routes"


def _route_modules_bound(tree: ast.Module) -> dict[str, str]:
    """Local names bound to route modules (``from registry.api.routes import adapters [as a]``,
    ``import registry.api.routes.adapters as a``) -> the module's name."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == ROUTES:
            bound.update({a.asname or a.name: a.name for a in node.names})
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith(f"{ROUTES}.") and a.asname:
                    bound[a.asname] = a.name.rsplit(".", 1)[1]
    return bound


@pytest.mark.parametrize("path", modules("api/routes/*.py"), ids=lambda p: p.name)
def test_routes_import_no_private_name_of_another_route_module(path: Path) -> None:
    """Shared route helpers live in a module of their own (``routes/_common.py``), never as
    private names of one route module that others reach into."""
    tree = ast.parse(path.read_text())
    own = path.stem
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(f"{ROUTES}."):
            other = (node.module or "").rsplit(".", 1)[1]
            if other != own:
                bad += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
    bound = _route_modules_bound(tree)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and isinstance(node.value, ast.Name)
            and bound.get(node.value.id, own) != own
        ):
            bad.append(f"{bound[node.value.id]}.{node.attr}")
    assert not bad, f"{path.name} uses private names of other route modules: {sorted(bad)}"


def test_client_router_uses_no_private_attribute_of_another_object() -> None:
    """The router talks to the client through its public API only (``_``-prefixed attributes
    are reached on ``self`` / ``cls`` alone; dunders are not private)."""
    path = PKG / "client" / "router.py"
    bad = [
        f"line {node.lineno}: .{node.attr}"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not (node.attr.startswith("__") and node.attr.endswith("__"))
        and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
    ]
    assert not bad, f"client/router.py reaches into other objects' private attributes: {bad}"
