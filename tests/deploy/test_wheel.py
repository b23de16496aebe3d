"""The wheel is enough to run the server: built from the source tree, installed on its own
(no checkout beside it), it migrates a fresh database to the code's head with
`adapter-registry db upgrade` and carries the policies and the console's files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from registry.db import migrate
from tests.deploy.chart import ROOT

PIP = (sys.executable, "-m", "pip")


def _build(tmp: Path) -> Path:
    # A copy of what the build reads, so the build leaves nothing in the checkout (build/).
    source = tmp / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "registry", source / "registry", ignore=shutil.ignore_patterns("__pycache__")
    )
    subprocess.run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", f"{tmp}/dist", source],
        check=True,
        timeout=300,
    )
    (wheel,) = (tmp / "dist").glob("adapter_registry-*.whl")
    return wheel


def test_a_wheel_install_migrates_and_carries_its_data(tmp_path: Path) -> None:
    wheel = _build(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    versions = {p.name for p in (migrate.MIGRATIONS / "versions").glob("*.py")}
    assert {f"registry/migrations/versions/{v}" for v in versions} <= names
    assert {"registry/migrations/env.py", "registry/policies/schema.cedarschema"} <= names
    assert any(n.startswith("registry/console/templates/") for n in names)
    assert any(n.startswith("registry/console/static/") for n in names)

    site = tmp_path / "site"
    subprocess.run(
        [*PIP, "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True,
        timeout=300,
    )
    work = tmp_path / "elsewhere"  # no alembic.ini, no source tree in sight
    work.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(site),  # ahead of the checkout's editable install
        "REGISTRY_DATABASE__URL": f"sqlite:///{work / 'registry.db'}",
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "registry", *args],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    where = subprocess.run(
        [sys.executable, "-c", "import registry; print(registry.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip().startswith(str(site)), where.stdout
    upgraded = cli("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    checked = cli("--output", "json", "db", "check")
    assert checked.returncode == 0, checked.stderr
    status = json.loads(checked.stdout)
    assert status["up_to_date"] is True
    assert status["current"] == sorted(migrate.head_revisions())
