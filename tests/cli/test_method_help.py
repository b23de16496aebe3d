"""``--help`` of the commands that bring adapters in lists every accepted ``peft_type``."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from registry.cli import app
from registry.validation.methods.names import accepted_types


@pytest.mark.parametrize("command", ["push", "register", "validate"])
def test_help_lists_accepted_types(runner: CliRunner, command: str) -> None:
    result = runner.invoke(app, ["adapters", command, "--help"])
    assert result.exit_code == 0, result.output
    words = " ".join(result.stdout.split())
    assert "Accepted peft_type values" in words
    listed = words.split("Accepted peft_type values", 1)[1]
    for peft_type in accepted_types():
        assert peft_type in listed.replace(",", " ").replace(".", " ").split(), peft_type
