"""README's "Import from MLflow" block, run as written against a real registry server (fresh
database) and the session's real MLflow server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.db import migrate
from tests.cli.test_readme import readme_block
from tests.fixtures.db import drop_database, new_database_url
from tests.fixtures.dialects import README_ON_SQLITE
from tests.fixtures.server import LiveServer, serving
from tests.mlflow_import.conftest import ROOT, MlflowServer, mlflow_env

PRELUDE = """
adapter-registry namespaces create acme
adapter-registry base-models register peft-fixtures/tiny-llama --revision main \\
  --from examples/bases/tiny-llama
"""


@pytest.fixture
def registry_server(tmp_path: Path, mlflow_server: MlflowServer) -> Iterator[LiveServer]:
    url = new_database_url(tmp_path, "registry_mlflow_readme")
    try:
        migrate.upgrade(url)
        allowed = json.dumps([mlflow_server.url])
        with serving(url, tmp_path, REGISTRY_MLFLOW__ALLOWED_SERVERS=allowed) as server:
            yield server
    finally:
        drop_database(url)


@pytest.mark.sqlite_leg(README_ON_SQLITE)
def test_readme_mlflow_block_runs_as_written(
    registry_server: LiveServer, mlflow_server: MlflowServer
) -> None:
    block = readme_block("mlflow").replace("http://127.0.0.1:5000", mlflow_server.url)
    env = mlflow_env()
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        REGISTRY_URL=registry_server.url,
        REGISTRY_TOKEN=registry_server.token,
    )
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", PRELUDE + block],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "acme/support-mlflow@v1" in done.stdout
    assert "False" in done.stdout.splitlines()
    assert "eval_loss" in done.stdout
