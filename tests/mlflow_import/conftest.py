"""A real ``mlflow server`` (one per test session) with the sources of log_sources.py logged to
it, and the registry app allowed to import from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from registry.app import create_app
from registry.mlflow_settings import MlflowSettings
from registry.settings import Settings
from tests.factories.catalog import register_base, unique
from tests.fixtures.peft import PEFT_FIXTURES
from tests.fixtures.server import free_port

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 240.0


@dataclass(frozen=True)
class MlflowServer:
    url: str
    log: Path
    artifacts: Path
    sources: dict[str, Any]

    def requested_paths(self) -> list[str]:
        """Request lines of the server's access log (uvicorn prints path and query)."""
        return [line for line in self.log.read_text().splitlines() if '"GET ' in line]


def mlflow_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "MLFLOW_"))}
    env.update(
        MLFLOW_DISABLE_TELEMETRY="true",
        # No huey job consumers (GenAI jobs, periodic tasks): seven extra processes importing
        # mlflow at start-up, none of which the model registry's REST API uses.
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
        DO_NOT_TRACK="true",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONPATH=str(ROOT),
    )
    return env


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    pytest.fail(f"mlflow server did not start in {START_TIMEOUT_S}s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    tmp = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp / "server.log"
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    cmd = [str(mlflow_bin), "server", "--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}"]
    cmd += ["--artifacts-destination", str(tmp / "artifacts")]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=mlflow_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(proc, url, log)
        result = tmp / "sources.json"
        subprocess.run(
            [sys.executable, "-m", "tests.mlflow_import.log_sources", url, str(result)],
            env=mlflow_env(),
            cwd=ROOT,
            check=True,
            timeout=180,
        )
        yield MlflowServer(url, log, tmp / "artifacts", json.loads(result.read_text()))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def mlflow_client(
    settings: Settings, admin_token: str, mlflow_server: MlflowServer
) -> Iterator[TestClient]:
    """The registry app with the test MLflow server (and a closed port, "down") allow-listed."""
    allowed = MlflowSettings(
        allowed_servers=[mlflow_server.url, f"http://127.0.0.1:{free_port()}"],
        connect_timeout_s=2.0,
        read_timeout_s=10.0,
        mirror_enabled=False,  # tests/mlflow_mirror drives its rounds itself
    )
    app = create_app(settings.model_copy(update={"mlflow": allowed}))
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {admin_token}"
        yield client


@pytest.fixture(scope="module")
def gpt2(mlflow_client: TestClient) -> str:
    """The tiny gpt2 base the logged adapters were trained on, registered: ``NAME@main``."""
    return register_base(mlflow_client, PEFT_FIXTURES / "bases" / "tiny-gpt2", name=unique("gpt2"))
