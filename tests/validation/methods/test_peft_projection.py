"""Vector and random-projection methods: real peft adapters validate; broken variants fail with
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
def vblora(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.VBLoRAConfig(r=4, num_vectors=16, vector_length=8, target_modules=T)
    return build(llama, config, tmp_path_factory.mktemp("vblora") / "a")


def test_vblora_validates(vblora: Path, llama: Path) -> None:
    assert_valid_with_and_without_base(vblora, llama, "VBLORA")
    assert len(validate_dir(vblora, llama).target_modules) == 6


def test_vblora_topk_only(llama: Path, tmp_path: Path) -> None:
    config = peft.VBLoRAConfig(
        r=4, num_vectors=16, vector_length=8, target_modules=T, save_only_topk_weights=True
    )
    adapter = build(llama, config, tmp_path / "a")
    assert_valid_with_and_without_base(adapter, llama, "VBLORA")
    name = f"{Q}.vblora_logits_A_topk_indices"
    floats = variant(adapter, tmp_path / "floats", tensors=add(name, (4, 4, 2)))
    assert_error(invalid_dir(floats, None), "inconsistent_adapter", "dtype_mismatch")
    logits = variant(adapter, tmp_path / "logits", tensors=add(f"{Q}.vblora_logits_A", (4, 4, 16)))
    assert_error(invalid_dir(logits, None), "inconsistent_adapter", "unexpected_tensor")


def test_vblora_broken_variants(vblora: Path, llama: Path, tmp_path: Path) -> None:
    bank = variant(vblora, tmp_path / "bank", tensors=drop("base_model.vblora_vector_bank"))
    assert_error(invalid_dir(bank, None), "inconsistent_adapter", "missing_tensor")
    short = variant(vblora, tmp_path / "short", tensors=reshape("vblora_vector_bank", (16, 4)))
    assert_error(invalid_dir(short, None), "inconsistent_adapter", "shape_mismatch")
    wide = variant(vblora, tmp_path / "wide", tensors=reshape("v_proj.vblora_logits_B", (4, 4, 16)))
    assert_error(invalid_dir(wide, llama), "incompatible_base", "shape_mismatch")
    rank = variant(vblora, tmp_path / "rank", tensors=reshape("q_proj.vblora_logits_A", (3, 4, 16)))
    assert_error(invalid_dir(rank, None), "inconsistent_adapter", "shape_mismatch")
    gone = variant(vblora, tmp_path / "gone", tensors=drop("q_proj.vblora_logits_B"))
    assert_error(invalid_dir(gone, None), "inconsistent_adapter", "missing_tensor")


@pytest.fixture(scope="module")
def pvera(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.PveraConfig(r=8, target_modules=T)
    return build(llama, config, tmp_path_factory.mktemp("pvera") / "a")


def test_pvera_validates(pvera: Path, llama: Path) -> None:
    assert_valid_with_and_without_base(pvera, llama, "PVERA")
    assert validate_dir(pvera, llama).r == 8


def test_pvera_broken_variants(pvera: Path, llama: Path, tmp_path: Path) -> None:
    no_a = variant(pvera, tmp_path / "no_a", tensors=drop("base_model.pvera_A"))
    assert_error(invalid_dir(no_a, None), "inconsistent_adapter", "missing_tensor")
    half = variant(pvera, tmp_path / "half", tensors=reshape("q_proj.pvera_lambda_d", (8,)))
    assert_error(invalid_dir(half, None), "inconsistent_adapter", "shape_mismatch")
    narrow = variant(pvera, tmp_path / "narrow", tensors=reshape("base_model.pvera_B", (32, 8)))
    assert_error(invalid_dir(narrow, llama), "incompatible_base", "shape_mismatch")
    off = variant(pvera, tmp_path / "off", config=set_key("save_projection", False))
    assert_error(invalid_dir(off, None), "inconsistent_adapter", "unexpected_tensor")


@pytest.fixture(scope="module")
def hira(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.HiraConfig(r=4, target_modules=T, rank_pattern={"v_proj": 2})
    return build(llama, config, tmp_path_factory.mktemp("hira") / "a")


def test_hira_validates_and_ignores_rank_pattern_as_peft_does(hira: Path, llama: Path) -> None:
    # peft 0.21 builds every layer with r, whatever rank_pattern says
    assert_valid_with_and_without_base(hira, llama, "HIRA")


def test_hira_broken_variants(hira: Path, llama: Path, tmp_path: Path) -> None:
    rank = variant(hira, tmp_path / "rank", tensors=reshape("v_proj.hira_A", (2, 32)))
    assert_error(invalid_dir(rank, None), "inconsistent_adapter", "shape_mismatch")
    r = variant(hira, tmp_path / "r", config=set_key("r", 8))
    assert_error(invalid_dir(r, None), "inconsistent_adapter", "shape_mismatch")
    out = variant(hira, tmp_path / "out", tensors=reshape("up_proj.hira_B", (32, 4)))
    assert_error(invalid_dir(out, llama), "incompatible_base", "shape_mismatch")
    gone = variant(hira, tmp_path / "gone", tensors=drop("q_proj.hira_B"))
    assert_error(invalid_dir(gone, None), "inconsistent_adapter", "missing_tensor")


@pytest.fixture(scope="module")
def randlora(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.RandLoraConfig(r=12, target_modules=T)
    return build(llama, config, tmp_path_factory.mktemp("randlora") / "a")


def test_randlora_validates_with_its_shared_bases(randlora: Path, llama: Path) -> None:
    assert_valid_with_and_without_base(randlora, llama, "RANDLORA")
    assert validate_dir(randlora, llama).r == 12


def test_randlora_without_saved_bases(llama: Path, tmp_path: Path) -> None:
    config = peft.RandLoraConfig(
        r=12, target_modules=["v_proj", "down_proj"], save_projection=False
    )
    adapter = build(llama, config, tmp_path / "a")
    assert_valid_with_and_without_base(adapter, llama, "RANDLORA")
    extra = variant(adapter, tmp_path / "extra", tensors=add("base_model.randlora_A", (12, 1, 32)))
    assert_error(invalid_dir(extra, None), "inconsistent_adapter", "unexpected_tensor")


def test_randlora_broken_variants(randlora: Path, llama: Path, tmp_path: Path) -> None:
    no_b = variant(randlora, tmp_path / "no_b", tensors=drop("base_model.randlora_B"))
    assert_error(invalid_dir(no_b, None), "inconsistent_adapter", "missing_tensor")
    bases = variant(
        randlora, tmp_path / "bases", tensors=reshape("base_model.randlora_B", (64, 2, 12))
    )
    assert_error(invalid_dir(bases, llama), "incompatible_base", "shape_mismatch")
    rank = variant(randlora, tmp_path / "rank", tensors=reshape("q_proj.randlora_lambda", (8, 3)))
    assert_error(invalid_dir(rank, None), "inconsistent_adapter", "shape_mismatch")
    gamma = variant(randlora, tmp_path / "gamma", tensors=reshape("v_proj.randlora_gamma", (2, 32)))
    assert_error(invalid_dir(gamma, llama), "incompatible_base", "shape_mismatch")
    off = variant(randlora, tmp_path / "off", config=set_key("save_projection", False))
    assert_error(invalid_dir(off, None), "inconsistent_adapter", "unexpected_tensor")
