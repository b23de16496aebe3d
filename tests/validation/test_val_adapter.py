"""validate_adapter: files, config and config <-> tensor consistency (one defect each)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from registry.errors import AdapterInvalid
from registry.validation import BaseManifest, BytesSource, validate_adapter

from .validation_builders import (
    GPT2_ATTN,
    LLAMA_Q,
    Lora,
    adapter_files,
    expect_invalid,
    expect_valid,
    f32,
    load_adapter,
    lora_tensors,
)

# --- files and config presence ------------------------------------------------------------


def test_validate_missing_config(llama_lora: Lora) -> None:
    files = adapter_files(*llama_lora)
    del files["adapter_config.json"]
    with pytest.raises(AdapterInvalid) as info:
        validate_adapter(files, base=None)
    assert (info.value.code, info.value.reason) == ("invalid_adapter_config", "missing_config")


def test_validate_missing_weights(llama_lora: Lora) -> None:
    files = adapter_files(*llama_lora)
    del files["adapter_model.safetensors"]
    with pytest.raises(AdapterInvalid) as info:
        validate_adapter(files, base=None)
    assert (info.value.code, info.value.reason) == ("missing_weights", "missing_weights")


def test_validate_bin_only_is_forbidden(
    llama_lora: Lora,
) -> None:
    files = adapter_files(*llama_lora)
    files["adapter_model.bin"] = files.pop("adapter_model.safetensors")
    with pytest.raises(AdapterInvalid) as info:
        validate_adapter(files, base=None)
    assert (info.value.code, info.value.reason) == ("forbidden_file", "pickle")


def test_validate_bin_next_to_valid_safetensors_is_forbidden(
    llama_lora: Lora,
) -> None:
    err = expect_invalid(*llama_lora, None, extra={"adapter_model.bin": pickle.dumps({"a": 1})})
    assert (err.code, err.reason) == ("forbidden_file", "pickle")


def test_validate_pickle_renamed_safetensors(
    llama_lora: Lora,
) -> None:
    files = adapter_files(*llama_lora)
    files["adapter_model.safetensors"] = BytesSource(pickle.dumps({"w": [1.0]}, protocol=4))
    with pytest.raises(AdapterInvalid) as info:
        validate_adapter(files, base=None)
    assert (info.value.code, info.value.reason) == ("forbidden_file", "pickle")


def test_validate_malformed_json_extra(llama_lora: Lora) -> None:
    err = expect_invalid(*llama_lora, None, extra={"tokenizer_config.json": b"{oops"})
    assert (err.code, err.reason) == ("forbidden_file", "malformed_json")


def test_validate_config_over_cap_is_refused(
    llama_lora: Lora,
) -> None:
    with pytest.raises(AdapterInvalid) as info:
        validate_adapter(adapter_files(*llama_lora), base=None, max_config_bytes=100)
    assert (info.value.code, info.value.reason) == ("invalid_adapter_config", "too_large")


def test_validate_no_tensors(llama_lora: Lora) -> None:
    err = expect_invalid(llama_lora[0], {}, None)
    assert (err.code, err.reason) == ("missing_weights", "no_tensors")


# --- config <-> tensors ---------------------------------------------------------------------


def test_validate_rank_pattern_mismatch(fixtures_dir: Path, bases: dict[str, BaseManifest]) -> None:
    config, tensors = load_adapter(fixtures_dir / "adapters/llama-lora-rank-pattern")
    config["rank_pattern"] = {"v_proj": 4}  # tensors for v_proj have rank 8
    err = expect_invalid(config, tensors, bases["tiny-llama"])
    assert (err.code, err.reason) == ("inconsistent_adapter", "rank_mismatch")
    assert err.context["module"].endswith("v_proj")
    assert (err.context["expected"], err.context["actual"]) == (4, 8)


def test_validate_rank_differs_from_r(llama_lora: Lora) -> None:
    config, tensors = llama_lora
    config["r"] = 4
    err = expect_invalid(config, tensors, None)
    assert (err.code, err.reason) == ("inconsistent_adapter", "rank_mismatch")


def test_validate_a_and_b_ranks_disagree(
    llama_lora: Lora,
) -> None:
    config, tensors = llama_lora
    tensors[f"{LLAMA_Q}.lora_B.weight"] = f32(64, 3)
    err = expect_invalid(config, tensors, None)
    assert err.reason == "rank_mismatch"
    assert err.context["tensor"] == f"{LLAMA_Q}.lora_B.weight"


@pytest.mark.parametrize("drop", ["lora_A.weight", "lora_B.weight"])
def test_validate_unpaired_lora(llama_lora: Lora, drop: str) -> None:
    config, tensors = llama_lora
    del tensors[f"{LLAMA_Q}.{drop}"]
    err = expect_invalid(config, tensors, None)
    assert (err.code, err.reason) == ("inconsistent_adapter", "unpaired_lora")
    assert err.context["tensor"] == f"{LLAMA_Q}.{drop}"


@pytest.mark.parametrize(
    "name",
    [
        "model.layers.0.self_attn.q_proj.lora_A.weight",  # no base_model.model. prefix
        f"{LLAMA_Q}.lora_C.weight",
        f"{LLAMA_Q}.ia3_l",
        f"{LLAMA_Q}.lora_A.default.weight",  # adapter name not stripped
    ],
)
def test_validate_unexpected_tensor(llama_lora: Lora, name: str) -> None:
    config, tensors = llama_lora
    tensors[name] = f32(2, 64)
    err = expect_invalid(config, tensors, None)
    assert (err.code, err.reason) == ("inconsistent_adapter", "unexpected_tensor")
    assert err.context["tensor"] == name


def test_validate_module_outside_target_modules(
    llama_lora: Lora,
) -> None:
    config, tensors = llama_lora
    tensors.update(lora_tensors("base_model.model.model.layers.0.mlp.up_proj", 2, 64, 128))
    err = expect_invalid(config, tensors, None)
    assert err.reason == "unexpected_tensor"
    assert err.context["module"] == "model.layers.0.mlp.up_proj"


def test_validate_dora_magnitude_missing(
    fixtures_dir: Path, bases: dict[str, BaseManifest]
) -> None:
    config, tensors = load_adapter(fixtures_dir / "adapters/llama-dora-r4")
    del tensors[f"{LLAMA_Q}.lora_magnitude_vector"]
    err = expect_invalid(config, tensors, bases["tiny-llama"])
    assert (err.code, err.reason) == ("inconsistent_adapter", "unpaired_lora")


def test_validate_dora_magnitude_without_use_dora(
    fixtures_dir: Path, bases: dict[str, BaseManifest]
) -> None:
    config, tensors = load_adapter(fixtures_dir / "adapters/llama-dora-r4")
    config["use_dora"] = False
    err = expect_invalid(config, tensors, bases["tiny-llama"])
    assert (err.code, err.reason) == ("inconsistent_adapter", "unexpected_tensor")


def test_validate_dora_magnitude_length_vs_base(
    fixtures_dir: Path, bases: dict[str, BaseManifest]
) -> None:
    config, tensors = load_adapter(fixtures_dir / "adapters/llama-dora-r4")
    tensors[f"{LLAMA_Q}.lora_magnitude_vector"] = f32(32)
    err = expect_invalid(config, tensors, bases["tiny-llama"])
    assert (err.code, err.reason) == ("incompatible_base", "shape_mismatch")


def test_validate_adalora_rank_above_init_r(
    fixtures_dir: Path, bases: dict[str, BaseManifest]
) -> None:
    config, tensors = load_adapter(fixtures_dir / "adapters/llama-adalora")
    config["init_r"] = 4  # tensors keep rank 6
    err = expect_invalid(config, tensors, bases["tiny-llama"])
    assert (err.code, err.reason) == ("inconsistent_adapter", "rank_mismatch")


def test_validate_adalora_rank_pattern_mask(
    fixtures_dir: Path, bases: dict[str, BaseManifest]
) -> None:
    config, tensors = load_adapter(fixtures_dir / "adapters/llama-adalora")
    module = "base_model.model.model.layers.0.self_attn.q_proj"
    config["rank_pattern"] = {f"{module}.lora_E": [True] * 3 + [False] * 3}
    for role, shape in (("lora_A", (3, 64)), ("lora_B", (64, 3)), ("lora_E", (3, 1))):
        tensors[f"{module}.{role}"] = f32(*shape)
    assert expect_valid(config, tensors, bases["tiny-llama"]).r == 6
    config["rank_pattern"] = {f"{module}.lora_E": [True] * 2 + [False] * 4}
    assert expect_invalid(config, tensors, bases["tiny-llama"]).reason == "rank_mismatch"


def test_validate_adalora_missing_lora_e(
    fixtures_dir: Path, bases: dict[str, BaseManifest]
) -> None:
    config, tensors = load_adapter(fixtures_dir / "adapters/llama-adalora")
    del tensors[f"{LLAMA_Q}.lora_E"]
    assert expect_invalid(config, tensors, bases["tiny-llama"]).reason == "unpaired_lora"


def test_validate_loha_rank_mismatch(fixtures_dir: Path, bases: dict[str, BaseManifest]) -> None:
    config, tensors = load_adapter(fixtures_dir / "adapters/llama-loha-r4")
    tensors[f"{LLAMA_Q}.hada_w2_b"] = f32(3, 64)
    err = expect_invalid(config, tensors, bases["tiny-llama"])
    assert (err.code, err.reason) == ("inconsistent_adapter", "rank_mismatch")


def test_validate_loha_shape_vs_base(fixtures_dir: Path, bases: dict[str, BaseManifest]) -> None:
    config, tensors = load_adapter(fixtures_dir / "adapters/llama-loha-r4")
    v_proj = "base_model.model.model.layers.0.self_attn.v_proj"
    tensors[f"{v_proj}.hada_w1_a"] = f32(64, 4)  # v_proj out is 32 (GQA)
    tensors[f"{v_proj}.hada_w2_a"] = f32(64, 4)
    err = expect_invalid(config, tensors, bases["tiny-llama"])
    assert (err.code, err.reason) == ("incompatible_base", "shape_mismatch")


def test_validate_lokr_product_vs_base(fixtures_dir: Path, bases: dict[str, BaseManifest]) -> None:
    config, tensors = load_adapter(fixtures_dir / "adapters/llama-lokr-r4")
    tensors[f"{LLAMA_Q}.lokr_w1"] = f32(4, 8)  # 4 * 8 = 32 rows, q_proj has 64
    err = expect_invalid(config, tensors, bases["tiny-llama"])
    assert (err.code, err.reason) == ("incompatible_base", "shape_mismatch")
    assert err.context["module"] == "model.layers.0.self_attn.q_proj"


def test_validate_lokr_missing_factor(fixtures_dir: Path, bases: dict[str, BaseManifest]) -> None:
    config, tensors = load_adapter(fixtures_dir / "adapters/llama-lokr-r4")
    del tensors["base_model.model.model.layers.0.mlp.down_proj.lokr_w2_b"]
    assert expect_invalid(config, tensors, bases["tiny-llama"]).reason == "unpaired_lora"


def test_validate_ia3_orientation_contradicts_feedforward(
    fixtures_dir: Path, bases: dict[str, BaseManifest]
) -> None:
    config, tensors = load_adapter(fixtures_dir / "adapters/gpt2-ia3")
    config["feedforward_modules"] = []
    err = expect_invalid(config, tensors, bases["tiny-gpt2"])
    assert (err.code, err.reason) == ("inconsistent_adapter", "config_mismatch")


def test_validate_ia3_width_vs_base(fixtures_dir: Path, bases: dict[str, BaseManifest]) -> None:
    config, tensors = load_adapter(fixtures_dir / "adapters/gpt2-ia3")
    tensors[f"{GPT2_ATTN}.ia3_l"] = f32(64, 1)  # c_attn out is 192
    err = expect_invalid(config, tensors, bases["tiny-gpt2"])
    assert (err.code, err.reason) == ("incompatible_base", "shape_mismatch")
