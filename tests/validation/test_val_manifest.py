"""Base weights manifests: single and sharded checkpoints, derived config values, digest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from safetensors.numpy import load_file, save_file

from registry.errors import CorruptSafetensors, InvalidBaseModel
from registry.validation import BaseManifest, read_base_dir


def _reason(path: Path) -> str:
    with pytest.raises(InvalidBaseModel) as info:
        read_base_dir(path)
    return info.value.reason


def _shard(src: Path, dst: Path, *, move: dict[str, str] | None = None) -> dict[str, Any]:
    """Split ``src``'s model.safetensors into two shards under ``dst``; return the index."""
    dst.mkdir()
    shutil.copy(src / "config.json", dst / "config.json")
    tensors = load_file(src / "model.safetensors")
    names = sorted(tensors)
    half = len(names) // 2
    shards = {
        "model-00001-of-00002.safetensors": names[:half],
        "model-00002-of-00002.safetensors": names[half:],
    }
    for shard, members in shards.items():
        save_file({n: tensors[n] for n in members}, dst / shard, metadata={"format": "pt"})
    weight_map = {n: shard for shard, members in shards.items() for n in members}
    weight_map.update(move or {})
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (dst / "model.safetensors.index.json").write_text(json.dumps(index))
    return index


def test_read_base_dir_gpt2_derived_values(bases: dict[str, BaseManifest]) -> None:
    gpt2 = bases["tiny-gpt2"]
    assert gpt2.model_type == "gpt2"
    assert gpt2.architecture == "GPT2LMHeadModel"
    assert (gpt2.hidden_size, gpt2.vocab_size, gpt2.num_layers) == (64, 256, 2)
    assert (gpt2.num_attention_heads, gpt2.num_key_value_heads, gpt2.kv_width) == (4, 4, 64)
    assert gpt2.tie_word_embeddings
    assert gpt2.uses_conv1d
    assert gpt2.tensors["transformer.h.0.attn.c_attn.weight"] == ("F32", (64, 192))
    assert "lm_head.weight" not in gpt2.tensors


def test_read_base_dir_llama_gqa_values(bases: dict[str, BaseManifest]) -> None:
    llama = bases["tiny-llama"]
    assert (llama.hidden_size, llama.num_attention_heads, llama.num_key_value_heads) == (64, 4, 2)
    assert (llama.head_dim, llama.kv_width) == (16, 32)
    assert not llama.tie_word_embeddings
    assert not llama.uses_conv1d
    assert len(llama.tensors) == 21


def test_manifest_matches_fixture_listing(
    bases: dict[str, BaseManifest], fixture_manifest: dict[str, Any]
) -> None:
    for entry in fixture_manifest["fixtures"]:
        if entry["kind"] == "base":
            expected = {n: (t["dtype"], tuple(t["shape"])) for n, t in entry["tensors"].items()}
            assert bases[entry["id"]].tensors == expected


def test_manifest_json_round_trip_keeps_digest(bases: dict[str, BaseManifest]) -> None:
    llama = bases["tiny-llama"]
    data = json.loads(json.dumps(llama.to_json()))
    again = BaseManifest.from_json(data)
    assert again == llama
    assert again.digest == llama.digest
    assert llama.digest.startswith("sha256:")
    assert len(llama.digest) == 7 + 64


def test_manifest_digest_changes_with_content(bases: dict[str, BaseManifest]) -> None:
    llama = bases["tiny-llama"]
    changed = BaseManifest(tensors=dict(llama.tensors), config={**llama.config, "vocab_size": 1})
    assert changed.digest != llama.digest
    assert bases["tiny-gpt2"].digest != llama.digest


@pytest.mark.parametrize(
    "data",
    [
        {"config": {}, "tensors": {}},
        {"schema_version": 1, "config": [], "tensors": {}},
        {"schema_version": 1, "config": {}, "tensors": {"a": {"dtype": "F32"}}},
        {"schema_version": 1, "config": {}, "tensors": {"a": {"dtype": "F32", "shape": [1.5]}}},
    ],
)
def test_manifest_from_json_rejects_malformed(data: dict[str, Any]) -> None:
    with pytest.raises(InvalidBaseModel) as info:
        BaseManifest.from_json(data)
    assert info.value.reason == "bad_manifest"


def test_manifest_gqa_defaults_kv_heads_to_heads() -> None:
    manifest = BaseManifest(tensors={}, config={"hidden_size": 64, "num_attention_heads": 8})
    assert (manifest.num_key_value_heads, manifest.kv_width, manifest.head_dim) == (8, 64, 8)
    assert manifest.tie_word_embeddings  # transformers' default


def test_manifest_reads_nested_text_config() -> None:
    manifest = BaseManifest(tensors={}, config={"text_config": {"hidden_size": 32, "n_layer": 3}})
    assert (manifest.hidden_size, manifest.num_layers) == (32, 3)


def test_read_base_dir_sharded_equals_single(
    fixtures_dir: Path, bases: dict[str, BaseManifest], tmp_path: Path
) -> None:
    _shard(fixtures_dir / "bases/tiny-llama", tmp_path / "sharded")
    sharded = read_base_dir(tmp_path / "sharded")
    assert sharded.tensors == bases["tiny-llama"].tensors
    assert sharded.digest == bases["tiny-llama"].digest


def test_read_base_dir_sharded_missing_shard(fixtures_dir: Path, tmp_path: Path) -> None:
    _shard(fixtures_dir / "bases/tiny-llama", tmp_path / "b")
    (tmp_path / "b/model-00002-of-00002.safetensors").unlink()
    assert _reason(tmp_path / "b") == "missing_weights"


def test_read_base_dir_sharded_tensor_in_wrong_shard(fixtures_dir: Path, tmp_path: Path) -> None:
    _shard(
        fixtures_dir / "bases/tiny-llama",
        tmp_path / "b",
        move={"lm_head.weight": "model-00002-of-00002.safetensors"},
    )
    assert _reason(tmp_path / "b") == "bad_index"


def test_read_base_dir_sharded_tensor_in_two_shards(fixtures_dir: Path, tmp_path: Path) -> None:
    _shard(fixtures_dir / "bases/tiny-llama", tmp_path / "b")
    first = tmp_path / "b/model-00001-of-00002.safetensors"
    second = tmp_path / "b/model-00002-of-00002.safetensors"
    tensors = load_file(second)
    tensors.update({k: v for k, v in load_file(first).items() if k == "lm_head.weight"})
    save_file(tensors, second)
    assert _reason(tmp_path / "b") == "bad_index"


def test_read_base_dir_sharded_index_names_absent_tensor(
    fixtures_dir: Path, tmp_path: Path
) -> None:
    _shard(
        fixtures_dir / "bases/tiny-llama",
        tmp_path / "b",
        move={"ghost.weight": "model-00001-of-00002.safetensors"},
    )
    assert _reason(tmp_path / "b") == "bad_index"


@pytest.mark.parametrize("weight_map", [None, {}, {"a": "../x.safetensors"}, {"a": 3}])
def test_read_base_dir_bad_index(fixtures_dir: Path, tmp_path: Path, weight_map: Any) -> None:
    (tmp_path / "b").mkdir()
    shutil.copy(fixtures_dir / "bases/tiny-llama/config.json", tmp_path / "b/config.json")
    (tmp_path / "b/model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    assert _reason(tmp_path / "b") == "bad_index"


def test_read_base_dir_missing_config(fixtures_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    shutil.copy(fixtures_dir / "bases/tiny-llama/model.safetensors", tmp_path / "b")
    assert _reason(tmp_path / "b") == "missing_config"
    assert _reason(tmp_path / "nowhere") == "missing_config"


def test_read_base_dir_bad_config(fixtures_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b/config.json").write_text("[1, 2]")
    shutil.copy(fixtures_dir / "bases/tiny-llama/model.safetensors", tmp_path / "b")
    assert _reason(tmp_path / "b") == "bad_config"


def test_read_base_dir_missing_weights(fixtures_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    shutil.copy(fixtures_dir / "bases/tiny-llama/config.json", tmp_path / "b")
    assert _reason(tmp_path / "b") == "missing_weights"


def test_read_base_dir_corrupt_weights_propagate(fixtures_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    shutil.copy(fixtures_dir / "bases/tiny-llama/config.json", tmp_path / "b")
    data = (fixtures_dir / "bases/tiny-llama/model.safetensors").read_bytes()
    (tmp_path / "b/model.safetensors").write_bytes(data[:-10])
    with pytest.raises(CorruptSafetensors) as info:
        read_base_dir(tmp_path / "b")
    assert info.value.reason == "truncated"
    assert info.value.context["file"] == "model.safetensors"
