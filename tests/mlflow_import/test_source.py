"""Source URIs, the allow-list and the adapter search order, without a server."""

from __future__ import annotations

import pytest

from registry.errors import InvalidUri, MlflowServerNotAllowed
from registry.mlflow_import.rest import ArtifactEntry
from registry.mlflow_import.service import allowed_server
from registry.mlflow_import.source import (
    Resolved,
    SourceUri,
    _as_adapter,
    _ordered_subfolders,
    parse_source_uri,
)
from registry.mlflow_settings import MlflowSettings

RUN = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("uri", "parsed"),
    [
        (f"runs:/{RUN}/adapter", SourceUri("run", run_id=RUN, path="adapter")),
        (f"runs:/{RUN}/a/b/", SourceUri("run", run_id=RUN, path="a/b")),
        (f"runs:/{RUN}", SourceUri("run", run_id=RUN, path="")),
        ("models:/support bot/12", SourceUri("model_version", name="support bot", version="12")),
        ("models:/bot@champion", SourceUri("model_alias", name="bot", alias="champion")),
        (f"models:/m-{RUN}", SourceUri("logged_model", model_id=f"m-{RUN}")),
    ],
)
def test_accepted_forms(uri: str, parsed: SourceUri) -> None:
    assert parse_source_uri(uri) == parsed


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "s3://bucket/prefix/",
        "mlflow-artifacts:/0/x",
        f"runs:/{RUN}/../secrets",
        f"runs:/{RUN}/a/./b",
        f"runs:/{RUN}/a%2f..",
        f"runs:/{RUN}/a?x=1",
        f"runs:/{RUN}/a\\b",
        "models:/bot/1/extra",
        "models:/bot@",
        "models:/",
        f"runs:/{RUN}/a\nb",
        "runs:/" + "x" * 2000,
    ],
)
def test_refused_forms(uri: str) -> None:
    with pytest.raises(InvalidUri):
        parse_source_uri(uri)


def test_allow_list_is_exact_after_normalising() -> None:
    settings = MlflowSettings(allowed_servers=["HTTP://MLflow.Internal:5000/"])
    assert allowed_server(settings, "http://mlflow.internal:5000") == "http://mlflow.internal:5000"
    for other in ("http://mlflow.internal:5001", "https://mlflow.internal:5000", None):
        with pytest.raises(MlflowServerNotAllowed):
            allowed_server(settings, other)
    with pytest.raises(ValueError, match="not an http"):
        MlflowSettings(allowed_servers=["file:///etc"])


def test_search_order_peft_then_highest_checkpoint_then_by_name() -> None:
    entries = [
        ArtifactEntry(p, True, None)
        for p in ("run/zeta", "run/checkpoint-9", "run/checkpoint-100", "run/peft", "run/alpha")
    ]
    entries.append(ArtifactEntry("run/MLmodel", False, 10))
    assert _ordered_subfolders(entries) == [
        "run/peft",
        "run/checkpoint-100",
        "run/checkpoint-9",
        "run/alpha",
        "run/zeta",
    ]


def test_only_the_adapter_files_are_fetched() -> None:
    names = [
        "adapter_config.json",
        "adapter_model.safetensors",
        "README.md",
        "tokenizer.json",
        "adapter_model.bin",
        "optimizer.pt",
        "training_args.bin",
        "rng_state.pth",
        "model.pkl",
        "trainer_state.json",
    ]
    folder = _as_adapter("ckpt", [ArtifactEntry(f"ckpt/{n}", False, 1) for n in names])
    assert folder is not None
    assert [f.path for f in folder.files] == [
        "ckpt/README.md",
        "ckpt/adapter_config.json",
        "ckpt/adapter_model.safetensors",
        "ckpt/tokenizer.json",
    ]
    assert _as_adapter("x", [ArtifactEntry("x/adapter_model.safetensors", False, 1)]) is None


def test_location_is_the_idempotency_key() -> None:
    assert Resolved(RUN, None, "adapter").location == f"runs/{RUN}/adapter"
    assert Resolved(RUN, "m-1", "").location == "logged-models/m-1"
