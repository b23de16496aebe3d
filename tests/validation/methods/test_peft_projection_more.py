"""Lily, PEANuT, LN tuning and Uni-LoRA: real peft adapters validate; broken variants fail with
their code and reason."""

from __future__ import annotations

from pathlib import Path

import peft
import pytest

from tests.validation.methods.method_builders import (
    add,
    assert_error,
    assert_valid_with_and_without_base,
    build,
    drop,
    invalid_dir,
    reshape,
    set_key,
    validate_dir,
    variant,
)

T = ["q_proj", "v_proj", "up_proj"]
Q = "base_model.model.model.layers.0.self_attn.q_proj"


@pytest.fixture(scope="module")
def lily(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.LilyConfig(r=8, num_B=3, target_modules=T)
    return build(llama, config, tmp_path_factory.mktemp("lily") / "a")


def test_lily_validates(lily: Path, llama: Path) -> None:
    assert_valid_with_and_without_base(lily, llama, "LILY")


def test_lily_broken_variants(lily: Path, llama: Path, tmp_path: Path) -> None:
    hubs = variant(lily, tmp_path / "hubs", config=set_key("num_B", 2))
    assert_error(invalid_dir(hubs, None), "inconsistent_adapter", "shape_mismatch")
    out = variant(lily, tmp_path / "out", tensors=reshape("v_proj.lily_B.weight", (24, 32)))
    assert_error(invalid_dir(out, llama), "incompatible_base", "shape_mismatch")
    gone = variant(lily, tmp_path / "gone", tensors=drop("q_proj.lily_router.weight"))
    assert_error(invalid_dir(gone, None), "inconsistent_adapter", "missing_tensor")


@pytest.fixture(scope="module")
def peanut(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.PeanutConfig(r=8, depth=2, target_modules=T)
    return build(llama, config, tmp_path_factory.mktemp("peanut") / "a")


def test_peanut_validates_with_its_encoder_stack(peanut: Path, llama: Path) -> None:
    assert_valid_with_and_without_base(peanut, llama, "PEANUT")


def test_peanut_broken_variants(peanut: Path, llama: Path, tmp_path: Path) -> None:
    deeper = variant(peanut, tmp_path / "deeper", config=set_key("depth", 3))
    assert_error(invalid_dir(deeper, None), "inconsistent_adapter", "missing_tensor")
    shallower = variant(peanut, tmp_path / "shallower", config=set_key("depth", 1))
    assert_error(invalid_dir(shallower, None), "inconsistent_adapter", "unexpected_tensor")
    enc = variant(peanut, tmp_path / "enc", tensors=reshape("peanut_encoders.1.weight", (8, 4)))
    assert_error(invalid_dir(enc, None), "inconsistent_adapter", "shape_mismatch")
    out = variant(peanut, tmp_path / "out", tensors=reshape("v_proj.peanut_A.weight", (8, 32)))
    assert_error(invalid_dir(out, llama), "incompatible_base", "shape_mismatch")


@pytest.fixture(scope="module")
def ln_tuning(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.LNTuningConfig(target_modules=["input_layernorm", "post_attention_layernorm"])
    return build(llama, config, tmp_path_factory.mktemp("ln") / "a")


def test_ln_tuning_validates(ln_tuning: Path, llama: Path) -> None:
    assert_valid_with_and_without_base(ln_tuning, llama, "LN_TUNING")
    assert len(validate_dir(ln_tuning, llama).target_modules) == 4


def test_ln_tuning_of_gpt2_layer_norms_with_bias(gpt2: Path, tmp_path: Path) -> None:
    adapter = build(gpt2, peft.LNTuningConfig(target_modules=["ln_1", "ln_f"]), tmp_path / "a")
    assert_valid_with_and_without_base(adapter, gpt2, "LN_TUNING")
    short = variant(
        adapter, tmp_path / "short", tensors=reshape("ln_f.ln_tuning_layers.bias", (8,))
    )
    assert_error(invalid_dir(short, gpt2), "incompatible_base", "shape_mismatch")


def test_ln_tuning_broken_variants(ln_tuning: Path, llama: Path, tmp_path: Path) -> None:
    name = "input_layernorm.ln_tuning_layers.weight"
    short = variant(ln_tuning, tmp_path / "short", tensors=reshape(name, (16,)))
    assert_error(invalid_dir(short, llama), "incompatible_base", "shape_mismatch")
    extra = variant(ln_tuning, tmp_path / "extra", tensors=add(f"{Q}.lora_A.weight", (8, 32)))
    assert_error(invalid_dir(extra, None), "inconsistent_adapter", "unexpected_tensor")


@pytest.fixture(scope="module")
def unilora(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.UniLoraConfig(r=4, theta_d_length=128, target_modules=T)
    return build(llama, config, tmp_path_factory.mktemp("unilora") / "a")


def test_unilora_validates(unilora: Path, llama: Path) -> None:
    assert validate_dir(unilora, llama).peft_type == "UNILORA"
    assert validate_dir(unilora, None).peft_type == "UNILORA"


def test_unilora_broken_variants(unilora: Path, tmp_path: Path) -> None:
    gone = variant(unilora, tmp_path / "gone", tensors=drop("base_model.unilora_theta_d"))
    assert_error(invalid_dir(gone, None), "missing_weights", "no_tensors")  # its only tensor
    length = variant(unilora, tmp_path / "length", config=set_key("theta_d_length", 256))
    assert_error(invalid_dir(length, None), "inconsistent_adapter", "shape_mismatch")
    extra = variant(unilora, tmp_path / "extra", tensors=add(f"{Q}.unilora_indices", (4, 32)))
    assert_error(invalid_dir(extra, None), "inconsistent_adapter", "unexpected_tensor")
