"""``adapters import --from-mlflow`` through the CLI, against the app and the real MLflow."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from registry.cli import app
from tests.factories.catalog import create_namespace
from tests.fixtures.app import cli_on_app
from tests.mlflow_import.conftest import MlflowServer


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, mlflow_client: TestClient, admin_token: str) -> CliRunner:
    """Every ``RegistryClient`` the CLI builds talks to the test app."""
    return cli_on_app(monkeypatch, mlflow_client, admin_token)


def _run(cli: CliRunner, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli.invoke(app, ["-o", "json", "adapters", "import", *args])
    return result.exit_code, json.loads(result.stdout)


def test_cli_imports_then_answers_the_same_version(
    cli: CliRunner, mlflow_client: TestClient, mlflow_server: MlflowServer, gpt2: str
) -> None:
    run_id = mlflow_server.sources["plain"]
    target = f"{create_namespace(mlflow_client)}/cli"
    args = ["--from-mlflow", f"runs:/{run_id}/adapter", "--adapter", target, "--base", gpt2]
    args += ["--mlflow-server", mlflow_server.url, "--tag", "from-mlflow"]
    code, first = _run(cli, *args)
    assert code == 0, first
    assert first["created"] is True
    assert first["version"]["tags"] == ["from-mlflow"]
    code, again = _run(cli, *args)
    assert code == 0
    assert again["created"] is False
    assert again["version"]["ref"] == first["version"]["ref"]


@pytest.mark.parametrize(
    ("source", "server", "exit_code", "error"),
    [
        ("plain", "http://elsewhere.example", 3, "mlflow_server_not_allowed"),
        ("empty", None, 6, "mlflow_no_adapter"),
        ("truncated", None, 6, "corrupt_safetensors"),
    ],
)
def test_cli_exit_codes(
    cli: CliRunner,
    mlflow_client: TestClient,
    mlflow_server: MlflowServer,
    gpt2: str,
    source: str,
    server: str | None,
    exit_code: int,
    error: str,
) -> None:
    uri = f"runs:/{mlflow_server.sources[source]}/" + ("adapter" if source != "empty" else "")
    target = f"{create_namespace(mlflow_client)}/cli"
    code, body = _run(
        cli,
        *("--from-mlflow", uri, "--adapter", target, "--base", gpt2),
        *("--mlflow-server", server or mlflow_server.url),
    )
    assert (code, body["error"]) == (exit_code, error), body
