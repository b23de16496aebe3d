"""Argument parsing: ``--parent REF:RELATION`` (last ':'), ``--dataset``, refs, digests."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from registry.cli import app
from registry.cli._common import (
    parse_adapter,
    parse_base,
    parse_dataset,
    parse_parent,
    version_body,
)
from registry.client import ClientError, split_ref, version_digest

HEX = "ab" * 32


@pytest.mark.parametrize(
    ("value", "ref", "relation"),
    [
        ("acme/bot@v3:continued_from", "acme/bot@v3", "continued_from"),
        (f"acme/bot@sha256:{HEX}:merged_from", f"acme/bot@sha256:{HEX}", "merged_from"),
        (
            "meta-llama/Llama-3.1-8B@abc123:rebased_from",
            "meta-llama/Llama-3.1-8B@abc123",
            "rebased_from",
        ),
        ("acme/bot:distilled_from", "acme/bot", "distilled_from"),
    ],
)
def test_parse_parent_splits_on_last_colon(value: str, ref: str, relation: str) -> None:
    assert parse_parent(value) == {"ref": ref, "relation": relation}


@pytest.mark.parametrize(
    "value", ["acme/bot@v3", ":continued_from", "acme/bot@v3:", f"acme/bot@sha256:{HEX}"]
)
def test_parse_parent_refuses(value: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_parent(value)


def test_parse_dataset() -> None:
    assert parse_dataset(f"train=sha256:{HEX}") == {"name": "train", "digest": f"sha256:{HEX}"}
    for bad in ("train", "=sha256:x", "train="):
        with pytest.raises(typer.BadParameter):
            parse_dataset(bad)


def test_parse_base_and_adapter() -> None:
    assert parse_base("meta-llama/Llama-3.1-8B@abc") == ("meta-llama/Llama-3.1-8B", "abc")
    assert parse_adapter("acme/bot") == ("acme", "bot")
    for bad_base in ("llama", "@r1", "llama@"):
        with pytest.raises(typer.BadParameter):
            parse_base(bad_base)
    for bad_adapter in ("acme", "acme/", "/bot", "acme/bot/x", "acme/bot@v1"):
        with pytest.raises(typer.BadParameter):
            parse_adapter(bad_adapter)


def test_version_body() -> None:
    body = version_body(
        base="tiny@r1",
        description=None,
        tags=["a"],
        datasets=[f"d=sha256:{HEX}"],
        parents=[f"acme/bot@sha256:{HEX}:merged_from"],
        git_commit="abc1234",
        mlflow_run=None,
        training_base_dtype="bf16",
        quantization=None,
    )
    assert body == {
        "base": "tiny@r1",
        "description": "",
        "tags": ["a"],
        "datasets": [{"name": "d", "digest": f"sha256:{HEX}"}],
        "parents": [{"ref": f"acme/bot@sha256:{HEX}", "relation": "merged_from"}],
        "git_commit": "abc1234",
        "training_base_dtype": "bf16",
    }


@pytest.mark.parametrize(
    ("ref", "parts"),
    [
        ("acme/bot", ("acme", "bot", "latest")),
        ("acme/bot@latest", ("acme", "bot", "latest")),
        ("acme/bot@v12", ("acme", "bot", "v12")),
        (f"acme/bot@sha256:{HEX}", ("acme", "bot", f"sha256:{HEX}")),
    ],
)
def test_split_ref(ref: str, parts: tuple[str, str, str]) -> None:
    assert split_ref(ref) == parts


@pytest.mark.parametrize("ref", ["bot", "acme/", "acme/bot@", "acme/bot/x@v1"])
def test_split_ref_refuses(ref: str) -> None:
    with pytest.raises(ClientError) as info:
        split_ref(ref)
    assert info.value.code == "invalid_reference"


def test_version_digest_matches_the_server_definition() -> None:
    from registry.catalog.registration import version_digest as server_digest

    files = [("b.json", "11" * 32, 3), ("a.safetensors", "22" * 32, 10)]
    listing = [{"name": n, "digest": f"sha256:{h}", "size": s} for n, h, s in files]
    assert version_digest(listing) == server_digest(files)


def test_bad_parent_is_a_usage_error_before_any_request(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text("{}")
    result = runner.invoke(
        app,
        [
            "--server",
            "http://127.0.0.1:9",
            "adapters",
            "push",
            str(tmp_path),
            "--adapter",
            "acme/bot",
            "--base",
            "tiny@r1",
            "--parent",
            "acme/bot@v1",
        ],
    )
    assert result.exit_code == 2
    assert "REF:RELATION" in result.output


def test_s3_base_model_source_is_not_supported_yet(runner: CliRunner) -> None:
    result = runner.invoke(
        app,
        [
            "base-models",
            "register",
            "tiny",
            "--revision",
            "r1",
            "--from",
            "s3://b/p/",
            "--output",
            "json",
        ],
    )
    assert result.exit_code == 2
    assert '"not_supported"' in result.stdout
