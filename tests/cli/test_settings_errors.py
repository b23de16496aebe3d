"""A bad ``REGISTRY_*`` value stops `serve` and `db upgrade` with a message naming the
environment variable (exit 2, ``invalid_settings``), never a pydantic traceback, and never
echoing the value (it may be a password or a key)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from registry.cli._settings import variable_for

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-value-never-printed"

CASES = [
    ({"REGISTRY_SERVER__PORT": "99999"}, "REGISTRY_SERVER__PORT"),
    ({"REGISTRY_DATABASE__POOL_SIZE": SECRET}, "REGISTRY_DATABASE__POOL_SIZE"),
    ({"REGISTRY_STORAGE__BACKEND": "gcs"}, "REGISTRY_STORAGE__BACKEND"),
    ({"REGISTRY_STORAGE__BACKEND": "s3"}, "REGISTRY_STORAGE__BUCKET"),
    (
        {"REGISTRY_STORAGE__IMPORT_ALLOWLIST": "s3://bucket/" + SECRET},
        "REGISTRY_STORAGE__IMPORT_ALLOWLIST",
    ),
    (
        {"REGISTRY_STORAGE__IMPORT_ALLOWLIST": '["s3://bucket/ok/", "http://elsewhere/"]'},
        "REGISTRY_STORAGE__IMPORT_ALLOWLIST",
    ),
    ({"REGISTRY_AUDIT__CHECKPOINT_INTERVAL_S": "-1"}, "REGISTRY_AUDIT__CHECKPOINT_INTERVAL_S"),
]


def run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    clean["REGISTRY_DATABASE__URL"] = f"sqlite:///{tmp_path / 'never-created.db'}"
    return subprocess.run(
        [sys.executable, "-m", "registry", *args],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("command", [["serve"], ["db", "upgrade"]], ids=["serve", "db-upgrade"])
@pytest.mark.parametrize(("env", "variable"), CASES, ids=[v for _, v in CASES])
def test_bad_setting_names_the_variable(
    tmp_path: Path, command: list[str], env: dict[str, str], variable: str
) -> None:
    done = run_cli(tmp_path, "--output", "json", *command, **env)
    assert done.returncode == 2, done.stderr
    body = json.loads(done.stdout)
    assert body["error"] == "invalid_settings"
    assert body["context"] == {"variable": variable}
    assert variable in body["detail"]
    assert "Traceback" not in done.stderr
    assert SECRET not in done.stdout + done.stderr
    # Nothing was started or created on the way out.
    assert not (tmp_path / "never-created.db").exists()


def test_human_output_names_the_variable_on_stderr(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "db", "upgrade", REGISTRY_SERVER__PORT="0")
    assert done.returncode == 2
    assert done.stdout == ""
    assert "REGISTRY_SERVER__PORT" in done.stderr
    assert "Traceback" not in done.stderr
    assert "ValidationError" not in done.stderr


def test_variable_for_field_paths() -> None:
    assert variable_for(("storage", "bucket")) == "REGISTRY_STORAGE__BUCKET"
    assert variable_for(("storage", "import_allowlist", 0)) == "REGISTRY_STORAGE__IMPORT_ALLOWLIST"
    assert variable_for(("storage",)) == "REGISTRY_STORAGE__*"
    assert variable_for(()) == "REGISTRY_*"
