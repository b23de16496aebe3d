"""The README walk-through, run as written against a real server on a fresh database."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.db import migrate
from tests.fixtures.app import bootstrap
from tests.fixtures.db import drop_database, new_database_url
from tests.fixtures.dialects import README_ON_SQLITE
from tests.fixtures.server import server_env, start_server, stop_server

ROOT = Path(__file__).resolve().parents[2]


def readme_block(marker: str) -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(rf"<!-- {marker}:start -->\s*```bash\n(.*?)```", text, re.S)
    assert block, f"README lost its {marker} markers"
    return block.group(1)


def walkthrough() -> str:
    """The catalog walk-through, adapter maths (which needs only the catalog's first block), then
    the governance, rollout and A/B experiment walk-throughs (one shell)."""
    blocks = ("walkthrough", "maths", "governance", "rollout", "experiment")
    return "\n".join(readme_block(m) for m in blocks)


@contextlib.contextmanager
def readme_registry(tmp_path: Path, db_name: str) -> Iterator[tuple[str, str]]:
    """A server process on a fresh migrated database: (its URL, an admin token)."""
    url = new_database_url(tmp_path, db_name)
    try:
        migrate.upgrade(url)
        proc, base_url = start_server(server_env(url, tmp_path / "artifacts"), tmp_path / "log")
        try:
            yield base_url, bootstrap(url, "admin")
        finally:
            stop_server(proc)
    finally:
        drop_database(url)


def run_as_written(
    script: str, url: str, token: str, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """Run README blocks in bash against ``url`` as a reader would, in a copy of what a clone
    has: <work>/repo (cwd) with .venv and examples/, and nothing beside it."""
    script = re.sub(r"export REGISTRY_URL=\S+", f"export REGISTRY_URL={url}", script)
    script = re.sub(r"export REGISTRY_TOKEN=\S+", f"export REGISTRY_TOKEN={token}", script)
    work = tmp_path / "work"
    (work / "repo").mkdir(parents=True)
    # The checkout's venv (a worktree without one: the running interpreter's).
    venv = ROOT / ".venv" if (ROOT / ".venv").exists() else Path(sys.prefix)
    (work / "repo" / ".venv").symlink_to(venv)
    shutil.copytree(ROOT / "examples", work / "repo" / "examples")
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env["PYTHONPATH"] = str(ROOT)  # this checkout's registry, whatever the venv points at
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=work / "repo",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    with readme_registry(tmp_path, "registry_readme") as found:
        yield found


@pytest.mark.sqlite_leg(README_ON_SQLITE)
def test_readme_walkthrough_runs_as_written(server: tuple[str, str], tmp_path: Path) -> None:
    url, token = server
    done = run_as_written(walkthrough(), url, token, tmp_path)
    work = tmp_path / "work"
    assert done.returncode == 0, done.stdout + done.stderr
    assert "refused with exit code 6" in done.stdout
    # Adapter maths: a composition registered with its lineage, another only written.
    assert "acme/support-billing@v1" in done.stdout
    assert "composed_from" in done.stdout
    composed = work / "repo" / "support-minus-billing"
    assert sorted(p.name for p in composed.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    # Governance: the regression blocks (exit 5), the requester is refused (exit 3), bob's
    # approval makes v2 stable, and the chain verifies.
    assert "blocked with exit code 5" in done.stdout
    assert "base-tasks/mmlu: candidate 0.55 vs stable 0.62" in done.stdout
    assert "refused with exit code 3" in done.stdout
    assert "separation_of_duties" in done.stdout + done.stderr
    printed = [json.loads(m) for m in re.findall(r"^\{\n.*?^\}$", done.stdout, re.S | re.M)]
    verified = [p for p in printed if "events" in p][-1]  # the last audit verify
    assert verified["ok"] is True
    assert verified["events"] > 10
    # Rolling out: a stale step refused, then the controller's automatic rollback.
    assert "stale revision: exit code 5" in done.stdout
    assert "automatic_rollback" in done.stdout
    during, after = [s for s in printed if "share_bp" in s][-2:]
    assert during["candidate"] is not None
    assert during["share_bp"] == 1000  # the default plan's first step: 10 %
    assert during["arm"] in ("stable", "candidate")
    assert after["candidate"] is None
    assert after["arm"] == "stable"
    assert '"reason": "truncated"' in done.stdout or '"reason":"truncated"' in done.stdout
    pulled = work / "repo" / "support-bot-v2"
    src = ROOT / "examples" / "adapters" / "support-bot-v2"
    assert sorted(p.name for p in pulled.iterdir()) == sorted(p.name for p in src.iterdir())
    for p in src.iterdir():
        assert (pulled / p.name).read_bytes() == p.read_bytes()
    # A/B experiment: the readout says better, the operator ships v2 (stable printed last).
    assert "experiment decision: better" in done.stdout
    assert "thumbs_up" in done.stdout
    assert "'ref': 'acme/support-bot@v2'" in done.stdout.rstrip().splitlines()[-1]


def test_readme_needs_nothing_beside_the_repository() -> None:
    """Every example in the README, run or not, reads its files from the repository (examples/),
    never from the project's shared fixtures beside a checkout."""
    text = (ROOT / "README.md").read_text()
    assert "shared/fixtures" not in text
    assert "$F/" not in text
    for path in re.findall(r"\bexamples/[\w./-]+", text):
        assert (ROOT / path.rstrip(".")).exists(), path
