"""Shell completion as the README documents it: ``_ADAPTER_REGISTRY_COMPLETE=source_<shell>``
prints the script, and the script's callback completes commands and options."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(**env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "registry"],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script(shell: str) -> None:
    script = run(_ADAPTER_REGISTRY_COMPLETE=f"source_{shell}")
    assert f"_ADAPTER_REGISTRY_COMPLETE=complete_{shell}" in script
    assert "adapter-registry" in script


def test_bash_completes_commands_and_subcommands() -> None:
    words = run(
        _ADAPTER_REGISTRY_COMPLETE="complete_bash",
        COMP_WORDS="adapter-registry aud",
        COMP_CWORD="1",
    ).split()
    assert words == ["audit"]
    words = run(
        _ADAPTER_REGISTRY_COMPLETE="complete_bash",
        COMP_WORDS="adapter-registry bootstrap --re",
        COMP_CWORD="2",
    ).split()
    assert set(words) == {"--recover", "--revoke-existing"}
