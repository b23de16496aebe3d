"""CLI commands over the client, against the in-memory fake API: the push protocol, JSON-only
stdout on errors, exit codes, pagination, usage errors through ``main``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from registry.cli import app, main
from tests.cli.fakes import FakeRegistry, error

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


def test_push_protocol(runner: CliRunner, fake: FakeRegistry, tmp_path: Path) -> None:
    directory = _adapter_dir(tmp_path)
    result = runner.invoke(
        app,
        [
            "adapters",
            "push",
            str(directory),
            "--adapter",
            "acme/bot",
            "--base",
            "tiny@r1",
            "--dataset",
            f"train=sha256:{HEX}",
            "--parent",
            f"acme/old@sha256:{HEX}:continued_from",
            "--tag",
            "exp",
            "--mlflow-run",
            "run1",
            "--output",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert {"version", "digest", "state"} <= set(body)
    assert body["version"] == 1
    assert fake.paths() == [
        "POST /api/v1/uploads",
        "PUT /api/v1/uploads/00000000-0000-0000-0000-000000000000/files/adapter_config.json",
        "PUT /api/v1/uploads/00000000-0000-0000-0000-000000000000/files/adapter_model.safetensors",
        "PUT /api/v1/uploads/00000000-0000-0000-0000-000000000000/files/training_args.bin",
        "POST /api/v1/adapters/acme/bot/versions",
    ]
    for request, sent in zip(fake.requests[1:4], fake.bodies[1:4], strict=True):
        assert request.headers["X-Content-Digest"] == "sha256:" + hashlib.sha256(sent).hexdigest()
    register = json.loads(fake.bodies[-1])
    assert register == {
        "base": "tiny@r1",
        "description": "",
        "tags": ["exp"],
        "datasets": [{"name": "train", "digest": f"sha256:{HEX}"}],
        "parents": [{"ref": f"acme/old@sha256:{HEX}", "relation": "continued_from"}],
        "mlflow_run_id": "run1",
        "upload_id": "00000000-0000-0000-0000-000000000000",
    }
    assert fake.requests[0].headers["Idempotency-Key"]
    assert (
        fake.requests[-1].headers["Idempotency-Key"] != fake.requests[0].headers["Idempotency-Key"]
    )
    assert "sub" in result.stderr  # the skipped sub-directory is mentioned, on stderr


def test_push_bad_adapter_exits_6_with_reason(
    runner: CliRunner, fake: FakeRegistry, tmp_path: Path
) -> None:
    fake.overrides.append(
        lambda r: (
            error(400, "forbidden_file", "pickle", file="training_args.bin", reason="pickle")
            if r.method == "POST" and r.url.path.endswith("/versions")
            else None
        )
    )
    result = runner.invoke(
        app,
        [
            "adapters",
            "push",
            str(_adapter_dir(tmp_path)),
            "--adapter",
            "acme/bot",
            "--base",
            "tiny@r1",
            "--output",
            "json",
        ],
    )
    assert result.exit_code == 6
    assert json.loads(result.stdout) == {
        "error": "forbidden_file",
        "detail": "pickle",
        "context": {"file": "training_args.bin", "reason": "pickle"},
    }


@pytest.mark.parametrize(
    ("answer", "exit_code"),
    [
        (error(401, "unauthenticated", "token"), 3),
        (error(403, "uri_not_allowed", "no"), 3),
        (error(404, "version_not_found", "no"), 4),
        (error(409, "invalid_transition", "no"), 5),
        (error(422, "idempotency_key_reused", "no"), 5),
        (error(400, "invalid_reference", "no"), 6),
        (error(503, "storage_unavailable", "down"), 7),
        (error(502, "integrity_failure", "tampered"), 8),
        (error(500, "internal", "boom"), 1),
    ],
)
def test_json_errors_only_json_on_stdout(
    runner: CliRunner, fake: FakeRegistry, answer: httpx.Response, exit_code: int
) -> None:
    fake.overrides.append(lambda r: answer)
    result = runner.invoke(app, ["adapters", "archive", "acme/bot@v1", "--output", "json"])
    assert result.exit_code == exit_code
    body = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert set(body) == {"error", "detail", "context"}
    assert result.stderr == ""


def test_server_unavailable_exit_7(runner: CliRunner, fake: FakeRegistry) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    fake.overrides.append(refuse)
    result = runner.invoke(app, ["-o", "json", "namespaces", "list"])
    assert result.exit_code == 7
    assert json.loads(result.stdout)["error"] == "server_unavailable"


def test_pull_integrity_failure_exit_8(
    runner: CliRunner, fake: FakeRegistry, tmp_path: Path
) -> None:
    fake.add_version({"adapter_config.json": b"{}"})
    fake.tampered["adapter_config.json"] = b"[]"
    result = runner.invoke(
        app, ["adapters", "pull", "acme/bot@v1", "--to", str(tmp_path / "out"), "--output", "json"]
    )
    assert result.exit_code == 8
    assert json.loads(result.stdout)["error"] == "integrity_failure"


def test_pull_json(runner: CliRunner, fake: FakeRegistry, tmp_path: Path) -> None:
    fake.add_version({"adapter_config.json": b"{}", "adapter_model.safetensors": b"abc"})
    out = tmp_path / "out"
    result = runner.invoke(app, ["adapters", "pull", "acme/bot@v1", "--to", str(out), "-o", "json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert set(body) >= {"ref", "digest", "files", "dir"}
    assert (out / "adapter_model.safetensors").read_bytes() == b"abc"
    again = runner.invoke(app, ["adapters", "pull", "acme/bot@v1", "--to", str(out), "-o", "json"])
    assert again.exit_code == 5
    assert json.loads(again.stdout)["error"] == "target_not_empty"


def test_versions_all_follows_pages(runner: CliRunner, fake: FakeRegistry) -> None:
    pages = {
        None: {"items": [{"ref": "acme/bot@v3"}], "next_page_token": "t1"},
        "t1": {"items": [{"ref": "acme/bot@v2"}], "next_page_token": "t2"},
        "t2": {"items": [{"ref": "acme/bot@v1"}], "next_page_token": None},
    }
    fake.overrides.append(lambda r: httpx.Response(200, json=pages[r.url.params.get("page_token")]))
    result = runner.invoke(
        app,
        [
            "adapters",
            "versions",
            "acme/bot",
            "--all",
            "--limit",
            "1",
            "--state",
            "validated",
            "-o",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "items": [{"ref": "acme/bot@v3"}, {"ref": "acme/bot@v2"}, {"ref": "acme/bot@v1"}],
        "next_page_token": None,
    }
    assert fake.requests[0].url.params["state"] == "validated"
    assert fake.requests[0].url.params["limit"] == "1"


def test_one_page_keeps_the_token(runner: CliRunner, fake: FakeRegistry) -> None:
    fake.overrides.append(
        lambda r: httpx.Response(200, json={"items": [{"name": "acme"}], "next_page_token": "n"})
    )
    result = runner.invoke(app, ["namespaces", "list"])
    assert result.exit_code == 0
    assert "--page-token n" in result.stdout


def test_table_output(runner: CliRunner, fake: FakeRegistry) -> None:
    fake.add_version({"adapter_config.json": b"{}"})
    result = runner.invoke(app, ["adapters", "versions", "acme/bot"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].split()[:3] == ["REF", "STATE", "PEFT_TYPE"]
    assert "acme/bot@v1" in result.stdout


def test_non_json_answer_exit_1_json(runner: CliRunner, fake: FakeRegistry) -> None:
    fake.overrides.append(lambda r: httpx.Response(200, content=b"not json"))
    result = runner.invoke(app, ["adapters", "show", "acme/bot", "-o", "json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"] == "bad_response"


def test_tag_sends_add_and_remove(runner: CliRunner, fake: FakeRegistry) -> None:
    fake.overrides.append(lambda r: httpx.Response(200, json={"ref": "acme/bot@v1", "tags": ["a"]}))
    result = runner.invoke(app, ["adapters", "tag", "acme/bot@v1", "a", "--remove", "b"])
    assert result.exit_code == 0, result.output
    assert json.loads(fake.bodies[0]) == {"add": ["a"], "remove": ["b"]}
    assert fake.requests[0].url.path == "/api/v1/adapters/acme/bot/versions/v1/tags"


def test_evals_record_body(runner: CliRunner, fake: FakeRegistry) -> None:
    fake.overrides.append(
        lambda r: httpx.Response(
            201, json={"ref": "acme/bot@v1", "suite": "s", "metric": "m", "value": 0.5}
        )
    )
    result = runner.invoke(
        app,
        [
            "evals",
            "record",
            f"acme/bot@sha256:{HEX}",
            "--suite",
            "s",
            "--metric",
            "m",
            "--value",
            "0.5",
            "--lower-is-better",
        ],
    )
    assert result.exit_code == 0, result.output
    assert fake.requests[0].url.path == (
        f"/api/v1/adapters/acme/bot/versions/sha256:{HEX}/evaluations"
    )
    assert json.loads(fake.bodies[0]) == {
        "suite": "s",
        "metric": "m",
        "value": 0.5,
        "higher_is_better": False,
    }


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
