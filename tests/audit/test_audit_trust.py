"""Audit verification over the real HTTP app with a store of its own (issue 11, point 12): no
checkpoint is a warning (and 409 on request), and ``audit rotate-key`` keeps the old checkpoints
verifiable across a server restart with the new key."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi.testclient import TestClient

from registry.app import create_app
from registry.settings import Settings
from tests.factories.catalog import create_namespace
from tests.fixtures.app import make_settings
from tests.fixtures.server import server_env


@contextmanager
def own_app(settings: Settings, admin_token: str) -> Iterator[TestClient]:
    """The app over the shared database but its own artifact store and signing key (its
    checkpoints and key history are this test's alone)."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {admin_token}"
        yield client


def test_no_checkpoint_is_a_warning_and_409_when_required(
    database_url: str, admin_token: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path / "artifacts")
    with own_app(settings, admin_token) as client:
        create_namespace(client)

        plain = client.get("/api/v1/audit/verify")
        required = client.get("/api/v1/audit/verify", params={"require_checkpoint": "true"})

        assert plain.status_code == 200
        assert plain.json()["ok"] is True
        assert plain.json()["checkpoints"] == 0
        assert plain.json()["warnings"] == ["no_checkpoints"]
        assert required.status_code == 409
        assert required.json()["error"] == "audit_checkpoint_missing"
        assert client.post("/api/v1/audit/checkpoints").status_code == 201
        anchored = client.get("/api/v1/audit/verify", params={"require_checkpoint": "true"})
        assert anchored.status_code == 200
        assert anchored.json()["warnings"] == []
        assert anchored.json()["last_checkpoint_seq"] >= 1


def rotate_key(database_url: str, artifacts: Path) -> dict[str, str]:
    """``adapter-registry audit rotate-key`` as an operator runs it, with the server's env."""
    env = server_env(database_url, artifacts)
    done = subprocess.run(
        [sys.executable, "-m", "registry", "audit", "rotate-key", "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, str] = json.loads(done.stdout)
    return answer


def test_rotated_key_keeps_old_checkpoints_verifiable(
    database_url: str, admin_token: str, tmp_path: Path
) -> None:
    artifacts = tmp_path / "artifacts"
    settings = make_settings(database_url, artifacts)
    # make_settings and server_env name the key file alike: the CLI rotates the app's key.
    assert settings.audit.signing_key_path == Path(
        server_env(database_url, artifacts)["REGISTRY_AUDIT__SIGNING_KEY_PATH"]
    )
    with own_app(settings, admin_token) as before:
        create_namespace(before)
        old = before.post("/api/v1/audit/checkpoints").json()

        rotation = rotate_key(database_url, artifacts)

        assert rotation["retired_key_id"] == old["key_id"]
        create_namespace(before)
        refused = before.post("/api/v1/audit/checkpoints")
        assert (refused.status_code, refused.json()["error"]) == (503, "audit_key_retired")

    with own_app(settings, admin_token) as after:  # the restart: loads the new key
        create_namespace(after)
        new = after.post("/api/v1/audit/checkpoints").json()
        verified = after.get("/api/v1/audit/verify").json()

    assert new["key_id"] == rotation["new_key_id"]
    assert (verified["ok"], verified["checkpoints"], verified["reason"]) == (True, 2, None)
