"""CLI commands over the client, against the in-memory fake API: the push protocol, JSON-only
stdout on errors, exit codes, pagination, usage errors through ``main``."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from registry.cli import app, main
from tests.fixtures.fake_registry import FakeRegistry

HEX = "cd" * 32


def _adapter_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "adapter"
    directory.mkdir()
    (directory / "adapter_config.json").write_text('{"peft_type": "LORA"}')
    (directory / "adapter_model.safetensors").write_bytes(b"w" * 64)
    (directory / "training_args.bin").write_bytes(b"\x80\x04")
    (directory / "sub").mkdir()
    (directory / "sub" / "ignored.txt").write_text("x")
    return directory


def test_non_json_answer_exit_1_json(runner: CliRunner, fake: FakeRegistry) -> None:
    fake.overrides.append(lambda r: httpx.Response(200, content=b"not json"))
    result = runner.invoke(app, ["adapters", "show", "acme/bot", "-o", "json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"] == "bad_response"


def test_main_usage_error_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["adapters", "show", "--output", "json"])  # REF missing
    assert info.value.code == 2
    out = capsys.readouterr().out
    assert json.loads(out)["error"] == "usage"


def test_main_usage_error_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["adapters", "nope"])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "nope" in captured.err


def test_main_exit_code_of_a_command(
    capsys: pytest.CaptureFixture[str], fake: FakeRegistry
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["adapters", "show", "acme/bot@v9", "--output", "json"])
    assert info.value.code == 4
    assert json.loads(capsys.readouterr().out)["error"] == "adapter_not_found"


def test_unexpected_error_is_exit_1(runner: CliRunner, fake: FakeRegistry) -> None:
    def boom(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("kaput")

    fake.overrides.append(boom)
    result = runner.invoke(app, ["adapters", "list", "-o", "json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "error": "unexpected",
        "detail": "RuntimeError: kaput",
        "context": {},
    }
