"""Import contracts of STYLE.md §3.2, checked on the source (cheap, no import-linter needed)."""

from __future__ import annotations

import ast
import re
from collections.abc import Collection, Iterator
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


def code_files() -> list[Path]:
    """registry/'s modules but for the Alembic tree (registry/migrations/: revisions are frozen
    DDL, env.py commits; tests/migrations holds their rules)."""
    return sorted(p for p in PKG.rglob("*.py") if p.relative_to(PKG).parts[0] != "migrations")


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
    "traffic",
    "jobs",
    "events",
    "mlflow_import",
    "mlflow_mirror",
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


def package_imports() -> dict[str, set[str]]:
    """registry package -> the registry packages its modules import (all modules, any depth)."""
    graph: dict[str, set[str]] = {}
    for path in code_files():
        rel = path.relative_to(PKG).parts
        src = rel[0].removesuffix(".py")
        targets = {m.split(".")[1] for m in imports_of(path) if m.startswith("registry.")}
        graph.setdefault(src, set()).update(targets - {src})
    return graph


def reaches_itself(graph: dict[str, set[str]], pkg: str) -> set[str]:
    """Every part ``pkg`` imports, directly or not; ``pkg`` itself among them means a cycle."""
    seen: set[str] = set()
    todo = list(graph.get(pkg, ()))
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(graph.get(current, ()))
    return seen


@pytest.mark.parametrize("pkg", sorted(package_imports()))
def test_package_is_in_no_import_cycle(pkg: str) -> None:
    """No package cycles: nothing ``pkg`` imports, directly or not, imports ``pkg`` back (every
    part of ``registry/``, top-level modules included, lazy imports included)."""
    seen = reaches_itself(package_imports(), pkg)
    assert pkg not in seen, f"{pkg} reaches itself through {sorted(seen)}"


def test_cycle_check_sees_an_indirect_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert "a" in reaches_itself(graph, "a")
    assert "d" not in reaches_itself(graph, "d")


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


@pytest.mark.parametrize("path", sorted(PKG.glob("*.py")), ids=lambda p: p.name)
def test_top_level_modules_use_services_not_repositories(path: Path) -> None:
    """``app.py``, ``maintenance.py`` and the other top-level modules wire domains together
    through their service functions, never their repositories."""
    bad = {m for m in imports_of(path) if ".repository" in m or m.endswith("Repository")}
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_commit_only_in_unit_of_work() -> None:
    allowed = {PKG / "db" / "session.py"}
    offenders = [
        str(p.relative_to(PKG))
        for p in code_files()
        if p not in allowed and ".commit()" in p.read_text()
    ]
    assert not offenders, offenders


# --- one owner per state ----------------------------------------------------------------------
# A promotion request, a rollout, a deployment's current revision and a job change state only in
# their transition functions (each checks the move against its table of allowed moves).
TRANSITIONS = {
    PKG / "promotions" / "states.py": {"transition"},
    PKG / "deployments" / "states.py": {"transition_rollout", "transition_revision"},
    PKG / "jobs" / "states.py": {"transition", "compare_and_set"},
}
MACHINE_MODELS = {"PromotionRequest", "Rollout", "Deployment", "Job"}
MACHINE_TABLES = re.compile(r"\bupdate\s+(promotion_requests|rollouts|deployments|jobs)\b", re.I)
# Attributes only these machines have; ``state`` is watched in every module that can see one of
# them (inside their packages, or importing from them): other machines have a ``state`` too.
MACHINE_ONLY = {"current_revision", "decided_at", "decision_reason"}
STATUS = {"state", *MACHINE_ONLY}
WING = ("registry.promotions", "registry.deployments", "registry.traffic", "registry.jobs")


def _targets(node: ast.AST) -> list[ast.expr]:
    if isinstance(node, ast.Assign):
        found = list(node.targets)
    elif isinstance(node, ast.AugAssign | ast.AnnAssign):
        found = [node.target]
    else:
        return []
    flat: list[ast.expr] = []
    while found:
        target = found.pop()
        if isinstance(target, ast.Tuple | ast.List):
            found.extend(target.elts)
        else:
            flat.append(target.value if isinstance(target, ast.Starred) else target)
    return flat


def _updates_a_machine(call: ast.Call) -> bool:
    """``update(<machine model>)...values(...)``."""
    return any(
        isinstance(sub, ast.Call)
        and isinstance(sub.func, ast.Name)
        and sub.func.id == "update"
        and any(isinstance(a, ast.Name) and a.id in MACHINE_MODELS for a in sub.args)
        for sub in ast.walk(call.func)
    )


def _call_writes(call: ast.Call, watched: set[str]) -> str | None:
    """``setattr(x, "state", ...)`` or ``update(<machine model>)...values(state=...)``."""
    func, args = call.func, call.args
    if isinstance(func, ast.Name) and func.id == "setattr" and len(args) > 1:
        name = args[1].value if isinstance(args[1], ast.Constant) else None
        return f"setattr {name}" if name in watched else None
    if isinstance(func, ast.Attribute) and func.attr == "values" and _updates_a_machine(call):
        keys = {k.arg for k in call.keywords}
        for arg in args:
            if isinstance(arg, ast.Dict):
                keys |= {str(k.value) for k in arg.keys if isinstance(k, ast.Constant)}
        written = sorted(str(k) for k in keys & STATUS)
        return f"update().values({', '.join(written)})" if written else None
    return None


def _written(node: ast.AST, watched: set[str]) -> str | None:
    """What ``node`` writes of ``watched`` attributes (None: nothing)."""
    for target in _targets(node):
        if isinstance(target, ast.Attribute) and target.attr in watched:
            return f".{target.attr} ="
    if isinstance(node, ast.Call):
        return _call_writes(node, watched)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return "UPDATE statement" if MACHINE_TABLES.search(node.value) else None
    return None


def state_writes(source: str, *, sees_machines: bool, allowed: Collection[str] = ()) -> list[str]:
    """Lines of ``source`` that change a machine's state outside the functions ``allowed``."""
    tree = ast.parse(source)
    watched = STATUS if sees_machines else MACHINE_ONLY
    inside: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef) and fn.name in allowed:
            inside.update(id(n) for n in ast.walk(fn))
    return [
        f"line {getattr(node, 'lineno', '?')}: {what}"
        for node in ast.walk(tree)
        if id(node) not in inside and (what := _written(node, watched)) is not None
    ]


def test_machine_state_changes_only_in_their_transition_function() -> None:
    offenders = []
    for path in code_files():
        in_wing = path.relative_to(PKG).parts[0] in {"promotions", "deployments", "traffic", "jobs"}
        sees = in_wing or any(m.startswith(WING) for m in imports_of(path))
        found = state_writes(
            path.read_text(), sees_machines=sees, allowed=TRANSITIONS.get(path, set())
        )
        offenders += [f"{path.relative_to(PKG)} {line}" for line in found]
    assert not offenders, offenders


@pytest.mark.parametrize(
    "code",
    [
        "row.state = 'expired'",
        "promotion.state, promotion.decided_at = to, now",
        "dep.current_revision += 1",
        "row.decision_reason: str = 'x'",
        "setattr(rollout, 'state', 'completed')",
        "session.execute(update(Rollout).where(Rollout.id == i).values(state='completed'))",
        "session.execute(update(PromotionRequest).values({'state': 'expired'}))",
        "session.execute(text('UPDATE promotion_requests SET state = :s'))",
        "session.execute(update(Job).where(Job.id == i).values(state='running'))",
        "session.execute(text('UPDATE jobs SET state = :s'))",
    ],
)
def test_the_state_scan_sees_every_form_of_write(code: str) -> None:
    assert state_writes(code, sees_machines=True)
    assert not state_writes(
        f"def transition():\n    {code}\n", sees_machines=True, allowed={"transition"}
    )


TESTS = Path(__file__).resolve().parent
# Test directories that mirror no registry package: shared fixtures and factories, the fuzz run
# against a live server, and the migrations (registry/migrations/ is an Alembic tree, no package);
# deploy/ checks the Helm chart and Dockerfile (deploy/helm/, also next to registry/); examples/
# the README's example base model and adapters and the script that makes them (examples/); ha/
# runs the whole system through a database failover (docs/deploy.md, "High availability").
SUPPORT_DIRS = {"fixtures", "factories", "fuzz", "migrations", "deploy", "examples", "ha"}


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


MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def _functions(tree: ast.Module) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function and method with its qualified name (``Class.method``, ``outer.inner``)."""
    stack: list[tuple[str, ast.AST]] = [("", tree)]
    while stack:
        prefix, node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    yield name, child
                stack.append((f"{name}.", child))
            else:
                stack.append((prefix, child))


def test_function_and_module_size() -> None:
    """No module over 400 lines, no function over 80 (``def`` to its last line, docstring
    included) in registry/."""
    too_big = []
    for path in code_files():
        rel = path.relative_to(PKG).as_posix()
        source = path.read_text()
        if (lines := len(source.splitlines())) > MAX_MODULE_LINES:
            too_big.append(f"{rel}: {lines} lines")
        for name, fn in _functions(ast.parse(source)):
            assert fn.end_lineno is not None
            length = fn.end_lineno - fn.lineno + 1
            if length > MAX_FUNCTION_LINES:
                too_big.append(f"{rel}::{name}: {length} lines")
    assert not too_big, too_big


# --- floors: the arrows docs/architecture.md draws ----------------------------------------------
# Domains, top first: each may import those after it (and the ground floor), never one before.
DOMAIN_ORDER = [
    "mlflow_mirror",
    "events",
    "mlflow_import",
    "jobs",
    "traffic",
    "promotions",
    "deployments",
    "idempotency",
    "oidc",
    "principals",
    "catalog",
    "uploads",
    "access",
    "auth",
    "audit",
]
GROUND_FLOOR = [
    "errors",
    "settings",
    "webhook_settings",
    "mlflow_settings",
    "oidc_settings",
    "direct_settings",
    "metrics",
    "metrics_workers",
    "refs",
    "schemas",
    "db",
    "validation",
    "maths",
    "policy",
    "canary",
    "experiments",
    "storage",
]


def floor_violations(graph: dict[str, set[str]]) -> list[str]:
    found = [
        f"{pkg} -> {target}"
        for i, pkg in enumerate(DOMAIN_ORDER)
        for target in sorted(graph.get(pkg, ()))
        if target in DOMAIN_ORDER[:i]
    ]
    found += [
        f"{pkg} -> {target}"
        for pkg in GROUND_FLOOR
        for target in sorted(graph.get(pkg, ()))
        if target not in GROUND_FLOOR and target != "__version__"
    ]
    return found


def test_domains_import_only_down_the_floors() -> None:
    """Every domain package sits on the diagram of docs/architecture.md, and no package imports
    one above it (the ground floor imports only the ground floor)."""
    graph = package_imports()
    domains = {p.parent.name for p in PKG.glob("*/__init__.py")} - set(GROUND_FLOOR)
    unplaced = sorted(domains - set(DOMAIN_ORDER) - {"api", "cli", "client", "console"})
    assert not unplaced, f"place these packages in DOMAIN_ORDER or GROUND_FLOOR: {unplaced}"
    assert not floor_violations(graph), floor_violations(graph)


def test_floor_check_sees_an_upward_import() -> None:
    assert floor_violations({"catalog": {"principals"}, "storage": {"db"}}) == [
        "catalog -> principals"
    ]
    assert floor_violations({"db": {"catalog"}}) == ["db -> catalog"]
    # Authentication below everything but audit; the rollout wing one way (canary on the ground
    # floor <- deployments <- promotions <- traffic).
    assert floor_violations({"auth": {"access", "audit", "principals"}}) == [
        "auth -> access",
        "auth -> principals",
    ]
    assert floor_violations(
        {"canary": {"deployments"}, "deployments": {"promotions"}, "promotions": {"traffic"}}
    ) == ["promotions -> traffic", "deployments -> promotions", "canary -> deployments"]
