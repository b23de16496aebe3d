"""Every group and command has a working ``--help``; start-up imports stay light."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from registry import __version__
from registry.cli import app

ROOT = Path(__file__).resolve().parents[2]

COMMANDS = [
    [],
    ["serve"],
    ["bootstrap"],
    ["db"],
    ["db", "upgrade"],
    ["db", "check"],
    ["db", "current"],
    ["storage"],
    ["storage", "gc"],
    ["namespaces"],
    ["namespaces", "create"],
    ["namespaces", "list"],
    ["base-models"],
    ["base-models", "register"],
    ["base-models", "list"],
    ["base-models", "show"],
    ["adapters"],
    ["adapters", "push"],
    ["adapters", "register"],
    ["adapters", "validate"],
    ["adapters", "list"],
    ["adapters", "show"],
    ["adapters", "versions"],
    ["adapters", "lineage"],
    ["adapters", "pull"],
    ["adapters", "tag"],
    ["adapters", "archive"],
    ["evals"],
    ["evals", "record"],
    ["evals", "list"],
    ["evals", "compare"],
    ["principals"],
    ["principals", "create"],
    ["principals", "list"],
    ["principals", "grant"],
    ["principals", "revoke"],
    ["principals", "set-role"],
    ["principals", "disable"],
    ["principals", "enable"],
    ["tokens"],
    ["tokens", "create"],
    ["tokens", "list"],
    ["tokens", "revoke"],
    ["publishers"],
    ["publishers", "add"],
    ["publishers", "list"],
    ["publishers", "exchange"],
    ["policies"],
    ["policies", "show"],
    ["policies", "apply"],
    ["policies", "check"],
    ["deployments"],
    ["deployments", "create"],
    ["deployments", "list"],
    ["deployments", "status"],
    ["deployments", "history"],
    ["deployments", "rollout"],
    ["deployments", "rollback"],
    ["deployments", "resolve"],
    ["deployments", "routing-table"],
    ["deployments", "report"],
    ["deployments", "decisions"],
    ["promotions"],
    ["promotions", "request"],
    ["promotions", "approve"],
    ["promotions", "reject"],
    ["promotions", "cancel"],
    ["promotions", "list"],
    ["promotions", "show"],
    ["audit"],
    ["audit", "log"],
    ["audit", "verify"],
    ["audit", "checkpoint"],
    ["audit", "served"],
    ["jobs"],
    ["jobs", "submit"],
    ["jobs", "show"],
    ["jobs", "list"],
    ["jobs", "cancel"],
    ["jobs", "wait"],
]

HEAVY = (
    "sqlalchemy",
    "alembic",
    "numpy",
    "boto3",
    "httpx",
    "fastapi",
    "uvicorn",
    "torch",
    "mlflow",
    "registry.app",
    "registry.client",
)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_help(runner: CliRunner, command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout
    assert result.stdout.strip()


def test_leaf_commands_document_output_option(runner: CliRunner) -> None:
    leaves = [c for c in COMMANDS if len(c) == 2 or c in (["bootstrap"],)]
    for command in leaves:
        result = runner.invoke(app, [*command, "--help"])
        assert "--output" in result.stdout, command


def test_root_help_lists_exit_codes(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"])
    for line in (
        "3  denied",
        "4  not found",
        "6  invalid input",
        "7  server unavailable",
        "8  integrity",
        "audit verify",
    ):
        assert line in result.stdout


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == __version__


def test_help_imports_no_heavy_modules() -> None:
    code = (
        "import json, sys\n"
        "from registry.cli import main\n"
        "for argv in (['--help'], ['adapters', 'push', '--help'], ['db', '--help'],\n"
        "             ['policies', 'check', '--help'], ['promotions', 'request', '--help'],\n"
        "             ['deployments', 'rollout', '--help'], ['audit', 'served', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, exc.code\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('HEAVY=' + json.dumps(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout
    heavy = json.loads(out.rsplit("HEAVY=", 1)[1])
    assert heavy == []


def test_python_m_registry() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "registry", "--version"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert out.stdout.strip() == __version__


def test_console_script_installed() -> None:
    script = Path(sys.executable).parent / "adapter-registry"
    assert script.exists(), "console script not installed (pip install -e .)"
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    assert "adapters" in out.stdout


def test_rollout_help_documents_compare_and_set(runner: CliRunner) -> None:
    rollout = runner.invoke(app, ["deployments", "rollout", "--help"]).stdout
    assert "--expected-revision" in rollout
    assert "precondition_required" in rollout
    rollback = runner.invoke(app, ["deployments", "rollback", "--help"]).stdout
    assert "reads the current revision" in " ".join(rollback.split())
    assert "--plan" in runner.invoke(app, ["promotions", "request", "--help"]).stdout
