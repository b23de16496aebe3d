"""The MLflow test server of tests/mlflow_import (a real ``mlflow server``), the registry app
allowed to reach it with the mirror worker off (tests drive rounds with their own clock), and
a governed team on that app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from registry.app import create_app
from registry.mlflow_settings import MlflowSettings
from registry.settings import Settings
from tests.factories.catalog import create_namespace, register_base, unique
from tests.factories.governance import make_principal
from tests.fixtures.governance import Team
from tests.fixtures.peft import PEFT_FIXTURES
from tests.mlflow_import.conftest import MlflowServer, mlflow_server

__all__ = ["mlflow_server"]

REASSERT_S = 600.0


@pytest.fixture(scope="module")
def mirror_settings(mlflow_server: MlflowServer) -> MlflowSettings:
    return MlflowSettings(
        allowed_servers=[mlflow_server.url],
        connect_timeout_s=1.0,
        read_timeout_s=10.0,
        mirror_enabled=False,
        mirror_reassert_s=REASSERT_S,
    )


@pytest.fixture(scope="module")
def mirror_client(
    settings: Settings, admin_token: str, mirror_settings: MlflowSettings
) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"mlflow": mirror_settings}))
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {admin_token}"
        yield client


@pytest.fixture
def mirror_team(mirror_client: TestClient, tmp_path: Path) -> Team:
    ns = create_namespace(mirror_client)
    base = register_base(mirror_client, PEFT_FIXTURES / "bases" / "tiny-gpt2", name=unique("gpt2"))
    return Team(
        client=mirror_client,
        namespace=ns,
        base=base,
        adapter=unique("bot"),
        dev=make_principal(mirror_client, "developer", [ns]),
        approver=make_principal(mirror_client, "approver", [ns]),
        approver2=make_principal(mirror_client, "approver", [ns]),
        operator=make_principal(mirror_client, "operator", [ns]),
        tmp=tmp_path,
    )
