"""``adapters validate`` (local, no server) on the shared PEFT fixtures: exactly the outcome of
MANIFEST.json — exit 0 ``{"valid": true}`` or exit 6 ``{"error", "context": {"reason"}}``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from registry.cli import app
from tests.cli.conftest import PEFT_FIXTURES


def _manifest() -> list[dict[str, Any]]:
    path = PEFT_FIXTURES / "MANIFEST.json"
    fixtures: list[dict[str, Any]] = json.loads(path.read_text())["fixtures"]
    return [f for f in fixtures if f["kind"] == "adapter"]


ADAPTERS = _manifest()


def _base_dir(fixture: dict[str, Any]) -> Path:
    return PEFT_FIXTURES / "bases" / str(fixture["base"])


def _validate(runner: CliRunner, adapter: Path, base: Path, *extra: str) -> tuple[int, Any]:
    result = runner.invoke(
        app, ["adapters", "validate", str(adapter), "--base-dir", str(base), *extra]
    )
    return result.exit_code, json.loads(result.stdout) if "--output" in extra else result


@pytest.mark.parametrize("fixture", ADAPTERS, ids=lambda f: str(f["id"]))
def test_fixture_outcome(runner: CliRunner, fixture: dict[str, Any]) -> None:
    code, body = _validate(
        runner, PEFT_FIXTURES / fixture["path"], _base_dir(fixture), "--output", "json"
    )
    if fixture["expected"] == "valid":
        assert code == 0, body
        assert body["valid"] is True
        assert body["peft_type"] == fixture["peft_type"]
        assert body["checked_against_base"] is True
    else:
        assert code == 6, body
        assert body["error"] == fixture["expected_error"]
        assert body["context"]["reason"] == fixture["error_detail"]
        assert set(body) == {"error", "detail", "context"}


def test_black_box_contract_through_console_script(tmp_path: Path) -> None:
    """The exact command line of the issue's black-box contract, as a subprocess."""
    script = Path(sys.executable).parent / "adapter-registry"
    assert script.exists(), "console script not installed (pip install -e .)"
    base = PEFT_FIXTURES / "bases" / "tiny-gpt2"

    def validate(adapter: Path) -> subprocess.CompletedProcess[str]:
        command = [
            str(script),
            "adapters",
            "validate",
            str(adapter),
            "--base-dir",
            str(base),
            "--output",
            "json",
        ]
        return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, check=False)

    good = validate(PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn")
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["valid"] is True
    bad = validate(PEFT_FIXTURES / "broken" / "gpt2-lora-shape-mismatch")
    assert bad.returncode == 6, bad.stderr
    body = json.loads(bad.stdout)
    assert body["error"] == "incompatible_base"
    assert body["context"]["reason"] == "shape_mismatch"


def test_global_output_option_before_the_command(runner: CliRunner) -> None:
    result = runner.invoke(
        app,
        [
            "--output",
            "json",
            "adapters",
            "validate",
            str(PEFT_FIXTURES / "broken" / "truncated-safetensors"),
            "--base-dir",
            str(PEFT_FIXTURES / "bases" / "tiny-gpt2"),
        ],
    )
    assert result.exit_code == 6
    assert json.loads(result.stdout)["context"]["reason"] == "truncated"


def test_table_output_errors_go_to_stderr(runner: CliRunner) -> None:
    result = runner.invoke(
        app,
        [
            "adapters",
            "validate",
            str(PEFT_FIXTURES / "broken" / "unknown-peft-type"),
            "--base-dir",
            str(PEFT_FIXTURES / "bases" / "tiny-gpt2"),
        ],
    )
    assert result.exit_code == 6
    assert result.stdout == ""
    assert "unknown_peft_type" in result.stderr


def test_valid_table_output(runner: CliRunner) -> None:
    result = runner.invoke(
        app,
        [
            "adapters",
            "validate",
            str(PEFT_FIXTURES / "adapters" / "llama-dora-r4"),
            "--base-dir",
            str(PEFT_FIXTURES / "bases" / "tiny-llama"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("valid:")


def test_without_base_checks_the_adapter_alone(runner: CliRunner) -> None:
    result = runner.invoke(
        app,
        [
            "adapters",
            "validate",
            str(PEFT_FIXTURES / "broken" / "gpt2-lora-shape-mismatch"),
            "--output",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["checked_against_base"] is False


def test_forbidden_file_is_not_filtered_out(runner: CliRunner, tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    shutil.copytree(PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn", adapter)
    (adapter / "training_args.bin").write_bytes(b"\x80\x04\x95" + b"\x00" * 64)  # a pickle
    result = runner.invoke(
        app,
        [
            "adapters",
            "validate",
            str(adapter),
            "--base-dir",
            str(PEFT_FIXTURES / "bases" / "tiny-gpt2"),
            "--output",
            "json",
        ],
    )
    assert result.exit_code == 6
    body = json.loads(result.stdout)
    assert body["error"] == "forbidden_file"
    assert body["context"]["file"] == "training_args.bin"


def test_missing_weights(runner: CliRunner, tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    shutil.copy(PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn" / "adapter_config.json", adapter)
    result = runner.invoke(app, ["adapters", "validate", str(adapter), "--output", "json"])
    assert result.exit_code == 6
    assert json.loads(result.stdout)["error"] == "missing_weights"


def test_bad_base_dir_is_invalid_base_model(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "adapters",
            "validate",
            str(PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn"),
            "--base-dir",
            str(tmp_path),
            "--output",
            "json",
        ],
    )
    assert result.exit_code == 6
    body = json.loads(result.stdout)
    assert body["error"] == "invalid_base_model"
    assert body["context"]["reason"] == "missing_config"


def test_base_dir_and_base_are_exclusive(runner: CliRunner) -> None:
    result = runner.invoke(
        app,
        [
            "adapters",
            "validate",
            str(PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn"),
            "--base-dir",
            str(PEFT_FIXTURES / "bases" / "tiny-gpt2"),
            "--base",
            "tiny-gpt2@r1",
        ],
    )
    assert result.exit_code == 2


def test_missing_directory_is_a_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["adapters", "validate", str(tmp_path / "nope")])
    assert result.exit_code == 2
