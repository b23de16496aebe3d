"""README's "React to events" block runs as written after the walk-through's first block, in the
harness of tests/cli/test_readme.py (a real server on a fresh database, a shell)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.db import migrate
from tests.cli.test_readme import ROOT, readme_block
from tests.fixtures.app import bootstrap
from tests.fixtures.db import drop_database, new_database_url
from tests.fixtures.peft import PEFT_FIXTURES
from tests.fixtures.server import server_env, start_server, stop_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    url = new_database_url(tmp_path, "registry_readme_events")
    try:
        migrate.upgrade(url)
        proc, base_url = start_server(server_env(url, tmp_path / "artifacts"), tmp_path / "log")
        try:
            yield base_url, bootstrap(url, "admin")
        finally:
            stop_server(proc)
    finally:
        drop_database(url)


def test_readme_events_block_runs_as_written(server: tuple[str, str], tmp_path: Path) -> None:
    url, token = server
    script = readme_block("walkthrough") + "\n" + readme_block("events")
    script = re.sub(r"export REGISTRY_URL=\S+", f"export REGISTRY_URL={url}", script)
    script = re.sub(r"export REGISTRY_TOKEN=\S+", f"export REGISTRY_TOKEN={token}", script)
    work = tmp_path / "work"
    (work / "repo").mkdir(parents=True)
    # The checkout's venv (a worktree without one: the running interpreter's).
    venv = ROOT / ".venv" if (ROOT / ".venv").exists() else Path(sys.prefix)
    (work / "repo" / ".venv").symlink_to(venv)
    (work / "shared" / "fixtures").mkdir(parents=True)
    (work / "shared" / "fixtures" / "peft").symlink_to(PEFT_FIXTURES)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env["PYTHONPATH"] = str(ROOT)  # this checkout's registry, whatever the venv points at
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=work / "repo",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "metadata address refused with exit code 6" in done.stdout
    assert "moved to the new pipeline" in done.stdout
    assert (work / "repo" / "rotated.json").read_text().count("whsec_") == 1
