"""README's "React to events" block runs as written after the walk-through's first block, in the
harness of tests/cli/test_readme.py (a real server on a fresh database, a shell)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_readme import readme_block, readme_registry, run_as_written
from tests.fixtures.dialects import README_ON_SQLITE


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    with readme_registry(tmp_path, "registry_readme_events") as found:
        yield found


@pytest.mark.sqlite_leg(README_ON_SQLITE)
def test_readme_events_block_runs_as_written(server: tuple[str, str], tmp_path: Path) -> None:
    url, token = server
    script = readme_block("walkthrough") + "\n" + readme_block("events")
    done = run_as_written(script, url, token, tmp_path)
    work = tmp_path / "work"
    assert done.returncode == 0, done.stdout + done.stderr
    assert "metadata address refused with exit code 6" in done.stdout
    assert "moved to the new pipeline" in done.stdout
    assert (work / "repo" / "rotated.json").read_text().count("whsec_") == 1
