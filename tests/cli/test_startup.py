"""Start-up stays light: ``--help`` (root, group, command) and ``--version`` import none of the
heavy libraries, and the lazily built command tree of ``main`` answers exactly what the tree
typer builds whole answers (help text, errors, exit codes).

(How long start-up takes is measured by ``bench/cli_startup.py``, not asserted here.)
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from registry.cli import app, main

ROOT = Path(__file__).resolve().parents[2]

#: Never imported to print help or the version (top-level package names, and our own modules
#: that pull them in).
HEAVY = (
    "sqlalchemy",
    "alembic",
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "boto3",
    "botocore",
    "torch",
    "safetensors",
    "numpy",
    "cedarpy",
    "mlflow",
    "pydantic",
    "rich",
    "registry.app",
    "registry.client",
    "registry.models",
    "registry.settings",
)

RUNS = [
    ["--help"],
    ["--version"],
    ["adapters", "--help"],
    ["adapters", "push", "--help"],
    ["adapters", "pull", "--help"],
    ["db", "--help"],
    ["deployments", "rollout", "--help"],
    ["-o", "json", "audit", "verify", "--help"],
]


def _imported(args: list[str]) -> set[str]:
    """Every module a fresh ``python -X importtime -m registry ARGS`` imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "registry", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip()
    rows = re.findall(r"^import time:\s+\d+ \|\s+\d+ \| *(\S+)$", done.stderr, re.MULTILINE)
    assert "registry.cli" in rows  # the report is there and parsed
    return set(rows)


@pytest.mark.parametrize("args", RUNS, ids=" ".join)
def test_start_up_imports_no_heavy_module(args: list[str]) -> None:
    modules = _imported(args)
    heavy = sorted(m for m in modules if m in HEAVY or m.split(".")[0] in HEAVY)
    assert heavy == []


def _paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, sub in getattr(command, "commands", {}).items():
        paths.extend(_paths(sub, (*prefix, name)))
    return paths


ALL_PATHS = _paths(typer.main.get_command(app))


def _run(capsys: pytest.CaptureFixture[str], argv: list[str], *, lazy: bool) -> tuple[Any, str]:
    """(exit code, stdout + stderr) of one run: through ``main`` (the lazily built tree) or
    through the whole tree typer builds, handled by the same ``main`` error handling."""
    capsys.readouterr()

    def whole(typer_app: typer.Typer, _cls: type[Any]) -> Any:
        return typer.main.get_command(typer_app)

    with pytest.MonkeyPatch.context() as patch:
        if not lazy:
            patch.setattr("registry.cli.root_command", whole)
        try:
            main(argv)
            code: Any = 0
        except SystemExit as exc:
            code = exc.code
    out = capsys.readouterr()
    return code, out.out + out.err


def test_the_walk_finds_the_whole_tree() -> None:
    assert len(ALL_PATHS) > 80
    assert ("adapters", "push") in ALL_PATHS


@pytest.mark.parametrize(
    "argv",
    [
        *([*p, "--help"] for p in ALL_PATHS),
        [],
        ["adapters"],
        ["nosuch"],
        ["adaptrs", "list"],
        ["adapters", "nosuch"],
        ["--output", "yaml", "adapters", "list"],
        ["-o", "json", "nosuch"],
        ["adapters", "pull"],
        ["--version"],
    ],
    ids=lambda a: " ".join(a) or "bare",
)
def test_lazy_tree_answers_like_the_whole_tree(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert _run(capsys, argv, lazy=True) == _run(capsys, argv, lazy=False)
