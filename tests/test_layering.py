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
    "principals",
    "uploads",
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


# The blob store is bytes only: no database and no domain. Upload sessions and the blob rows
# live in registry/uploads/, above the store.
STORE_MAY_NOT_IMPORT = {
    "sqlalchemy",
    "registry.db",
    "registry.principals",
    *(f"registry.{pkg}" for pkg in DOMAIN_PACKAGES if pkg != "storage"),
}


@pytest.mark.parametrize("path", modules("storage/*.py"), ids=lambda p: p.name)
def test_storage_is_the_blob_store_only(path: Path) -> None:
    bad = {
        m
        for m in imports_of(path)
        if {m.split(".")[0], ".".join(m.split(".")[:2])} & STORE_MAY_NOT_IMPORT
    }
    assert not bad, f"storage/{path.name} imports {sorted(bad)}"


@pytest.mark.parametrize("path", modules("db/*.py"), ids=lambda p: p.name)
def test_db_imports_no_domain(path: Path) -> None:
    domains = tuple(f"registry.{pkg}" for pkg in DOMAIN_PACKAGES)
    bad = {m for m in imports_of(path) if m.startswith(domains)}
    assert not bad, f"{path.name} imports {sorted(bad)}"


# Authentication is the ground floor: token -> principal, nothing about who may do what or what
# the registry holds. Everything above it (authorization, the catalog, administration of
# principals) imports auth, never the other way round.
ABOVE_AUTH = ("access", "catalog", "principals", "deployments", "promotions", "oidc")


@pytest.mark.parametrize("path", modules("auth/*.py"), ids=lambda p: p.name)
def test_auth_imports_nothing_above_it(path: Path) -> None:
    bad = {
        m for m in imports_of(path) if m.startswith("registry.") and m.split(".")[1] in ABOVE_AUTH
    }
    assert not bad, f"auth/{path.name} imports {sorted(bad)}"


def package_imports() -> dict[str, set[str]]:
    """registry package -> the registry packages its modules import (all modules, any depth)."""
    graph: dict[str, set[str]] = {}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).parts
        src = rel[0].removesuffix(".py")
        targets = {m.split(".")[1] for m in imports_of(path) if m.startswith("registry.")}
        graph.setdefault(src, set()).update(targets - {src})
    return graph


@pytest.mark.parametrize("pkg", ["auth", "access"])
def test_package_is_in_no_import_cycle(pkg: str) -> None:
    """Nothing ``pkg`` imports, directly or not, imports ``pkg`` back."""
    graph = package_imports()
    seen: set[str] = set()
    todo = list(graph.get(pkg, ()))
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(graph.get(current, ()))
    assert pkg not in seen, f"{pkg} reaches itself through {sorted(seen)}"


def test_no_domain_imports_another_domains_repository() -> None:
    offenders = []
    for pkg in DOMAIN_PACKAGES:
        for path in modules(f"{pkg}/*.py"):
            for m in imports_of(path):
                # a repository module, or a repository class kept elsewhere (BlobRepository)
                if m.startswith("registry.") and (".repository" in m or m.endswith("Repository")):
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


TESTS = Path(__file__).resolve().parent
# Test directories that mirror no registry package: shared fixtures and factories, the fuzz run
# against a live server, and the migrations (migrations/ lives next to registry/, not in it).
SUPPORT_DIRS = {"fixtures", "factories", "fuzz", "migrations"}


def test_tests_mirror_packages() -> None:
    """``tests/<pkg>/`` holds the tests of ``registry/<pkg>/``: every package has a test directory
    with at least one test file, and every test directory is a package's (or a support dir)."""
    packages = {p.parent.name for p in PKG.glob("*/__init__.py")}
    test_dirs = {
        p.name for p in TESTS.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
    }
    problems = {
        "registry packages without tests/<pkg>/test_*.py": sorted(
            pkg for pkg in packages if not any((TESTS / pkg).glob("test_*.py"))
        ),
        "tests/ directories that are no registry package": sorted(
            test_dirs - packages - SUPPORT_DIRS
        ),
    }
    assert not any(problems.values()), {k: v for k, v in problems.items() if v}
