"""``deployments mirror set|show|remove`` through the CLI, against the app."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from registry.cli import app
from tests.factories.governance import create_deployment
from tests.fixtures.app import cli_on_app
from tests.fixtures.governance import Team
from tests.mlflow_import.conftest import MlflowServer


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, mirror_client: TestClient, admin_token: str) -> CliRunner:
    """Every ``RegistryClient`` the CLI builds talks to the test app."""
    return cli_on_app(monkeypatch, mirror_client, admin_token)


def _run(cli: CliRunner, *args: str) -> tuple[int, Any]:
    result = cli.invoke(app, ["-o", "json", "deployments", "mirror", *args])
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else None


def test_mirror_set_show_remove(
    cli: CliRunner, mirror_team: Team, mlflow_server: MlflowServer
) -> None:
    team = mirror_team
    team.push()
    dep = create_deployment(team.client, team.operator, team.base, team.adapter_ref)
    code, body = _run(cli, "show", dep)
    assert (code, body["error"]) == (4, "mlflow_mirror_not_found")
    code, body = _run(cli, "set", dep, "--model", "m", "--mlflow-server", "http://elsewhere.test")
    assert (code, body["error"]) == (3, "mlflow_server_not_allowed")
    args = ["--model", "m", "--mlflow-server", mlflow_server.url, "--candidate-alias", "canary"]
    code, body = _run(cli, "set", dep, *args)
    assert code == 0, body
    assert (body["model"], body["stable_alias"], body["candidate_alias"]) == (
        "m",
        "prod-stable",
        "canary",
    )
    code, shown = _run(cli, "show", dep)
    assert (code, shown["tracking_server"]) == (0, mlflow_server.url)
    code, body = _run(cli, "remove", dep)
    assert (code, body) == (0, {"removed": dep})
    assert _run(cli, "show", dep)[0] == 4
