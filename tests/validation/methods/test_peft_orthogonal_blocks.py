"""MiSS (and the other block methods): real peft adapters validate; broken variants fail."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import peft
import pytest

from tests.validation.methods.method_builders import (
    Tensors,
    add,
    assert_error,
    build,
    drop,
    invalid_dir,
    reshape,
    set_key,
    validate_dir,
    variant,
)

Q = "base_model.model.model.layers.0.self_attn.q_proj"
TARGETS = ["q_proj", "v_proj", "down_proj"]


@pytest.fixture(scope="module")
def miss(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.MissConfig(r=8, target_modules=TARGETS)
    return build(llama, config, tmp_path_factory.mktemp("miss") / "a")


def test_miss_validates_with_and_without_its_base(miss: Path, llama: Path) -> None:
    report = validate_dir(miss, llama)
    assert (report.peft_type, report.r) == ("MISS", 8)
    assert report.trainable_params == 2 * (8 * 32 + 8 * 16 + 8 * 32)
    assert validate_dir(miss, None).target_modules == report.target_modules


@pytest.mark.parametrize(("init", "mini_r"), [("bat", 1), ("mini", 4)])
def test_miss_bat_and_mini_shapes(
    llama: Path, tmp_path: Path, init: Literal["bat", "mini"], mini_r: int
) -> None:
    config = peft.MissConfig(r=8, init_weights=init, mini_r=mini_r, target_modules=TARGETS)
    adapter = build(llama, config, tmp_path / "a")
    assert validate_dir(adapter, llama).peft_type == "MISS"
    assert validate_dir(adapter, None).peft_type == "MISS"
    # The same tensors read with the default layout [r, out] do not fit (mini's [r, mini_r]
    # reads as [r, out] until the base says out).
    plain = variant(adapter, tmp_path / "plain", config=set_key("init_weights", True))
    if init == "bat":
        assert_error(invalid_dir(plain, None), "inconsistent_adapter", "shape_mismatch")
    else:
        assert_error(invalid_dir(plain, llama), "incompatible_base", "shape_mismatch")


def test_miss_broken_variants(miss: Path, llama: Path, tmp_path: Path) -> None:
    out = variant(miss, tmp_path / "out", tensors=reshape("v_proj.miss_block", (8, 32)))
    assert_error(invalid_dir(out, llama), "incompatible_base", "shape_mismatch")
    rank = variant(miss, tmp_path / "rank", tensors=reshape("q_proj.miss_block", (4, 32)))
    assert_error(invalid_dir(rank, None), "inconsistent_adapter", "shape_mismatch")
    bat = variant(miss, tmp_path / "bat", config=set_key("init_weights", "bat"))
    assert_error(invalid_dir(bat, None), "inconsistent_adapter", "shape_mismatch")
    extra = variant(miss, tmp_path / "extra", tensors=add(f"{Q}.bone_block", (8, 32)))
    assert_error(invalid_dir(extra, None), "inconsistent_adapter", "unexpected_tensor")
    bad = variant(miss, tmp_path / "bad", config=set_key("mini_r", "1"))
    assert_error(invalid_dir(bad, None), "invalid_adapter_config", "schema")


def test_bone_is_refused_as_peft_has_no_tuner_for_it(miss: Path, tmp_path: Path) -> None:
    def bone_names(t: Tensors) -> Tensors:
        return {k.replace("miss_block", "bone_block"): v for k, v in t.items()}

    # As older peft saved it (bone_block) or relabelled from MiSS: peft 0.21 loads neither.
    for name, tensors in (("bone", bone_names), ("relabelled", None)):
        bone = variant(miss, tmp_path / name, tensors=tensors, config=set_key("peft_type", "BONE"))
        error = invalid_dir(bone, None)
        assert_error(error, "unknown_peft_type", "not_validated")
        assert "bone_block" in error.context["why"]
        assert "Re-save it with peft as MISS" in error.context["why"]


def test_c3a_validates_and_its_block_size_is_checked(llama: Path, tmp_path: Path) -> None:
    adapter = build(llama, peft.C3AConfig(block_size=8, target_modules=TARGETS), tmp_path / "a")
    report = validate_dir(adapter, llama)
    assert report.peft_type == "C3A"
    assert report.trainable_params == 2 * (4 * 4 * 8 + 2 * 4 * 8 + 4 * 8 * 8)
    assert validate_dir(adapter, None).trainable_params == report.trainable_params
    block = variant(adapter, tmp_path / "block", config=set_key("block_size", 4))
    assert_error(invalid_dir(block, None), "inconsistent_adapter", "shape_mismatch")
    blocks = variant(adapter, tmp_path / "blocks", tensors=reshape("v_proj.c3a_kernel", (4, 4, 8)))
    assert_error(invalid_dir(blocks, llama), "incompatible_base", "shape_mismatch")
    extra = variant(adapter, tmp_path / "extra", tensors=add(f"{Q}.c3a_bias", (32,)))
    assert_error(invalid_dir(extra, None), "inconsistent_adapter", "unexpected_tensor")
    bad = variant(adapter, tmp_path / "bad", config=set_key("block_size", True))
    assert_error(invalid_dir(bad, None), "invalid_adapter_config", "schema")


def test_delora_validates_with_its_norm_buffer(llama: Path, tmp_path: Path) -> None:
    adapter = build(llama, peft.DeloraConfig(r=4, target_modules=TARGETS), tmp_path / "a")
    report = validate_dir(adapter, llama)
    assert (report.peft_type, report.r) == ("DELORA", 4)
    assert validate_dir(adapter, None).target_modules == report.target_modules
    norm = variant(adapter, tmp_path / "norm", tensors=reshape("down_proj.delora_w_norm", (32,)))
    assert_error(invalid_dir(norm, llama), "incompatible_base", "shape_mismatch")
    no_norm = variant(adapter, tmp_path / "no_norm", tensors=drop("q_proj.delora_w_norm"))
    assert_error(invalid_dir(no_norm, None), "inconsistent_adapter", "missing_tensor")
    lam = variant(adapter, tmp_path / "lam", tensors=reshape("q_proj.delora_lambda", (4,)))
    assert_error(invalid_dir(lam, None), "inconsistent_adapter", "shape_mismatch")
    bad = variant(adapter, tmp_path / "bad", config=set_key("r", "4"))
    assert_error(invalid_dir(bad, None), "invalid_adapter_config", "schema")


@pytest.fixture(scope="module")
def gralora(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.GraloraConfig(r=8, hybrid_r=4, gralora_k=2, target_modules=TARGETS)
    return build(llama, config, tmp_path_factory.mktemp("gralora") / "a")


def test_gralora_hybrid_and_conv1d(gralora: Path, llama: Path, gpt2: Path, tmp_path: Path) -> None:
    report = validate_dir(gralora, llama)
    assert (report.peft_type, report.r) == ("GRALORA", 8)
    assert validate_dir(gralora, None).trainable_params == report.trainable_params
    conv1d = build(gpt2, peft.GraloraConfig(r=8, target_modules=["c_attn"]), tmp_path / "gpt2")
    assert validate_dir(conv1d, gpt2).trainable_params == 2 * (2 * 16 * 8 + 2 * 8 * 48)


def test_gralora_broken_variants(gralora: Path, llama: Path, tmp_path: Path) -> None:
    k = variant(gralora, tmp_path / "k", config=set_key("gralora_k", 4))
    assert_error(invalid_dir(k, None), "inconsistent_adapter", "shape_mismatch")
    out = variant(gralora, tmp_path / "out", tensors=reshape("v_proj.gralora_B", (2, 8, 16)))
    assert_error(invalid_dir(out, llama), "incompatible_base", "shape_mismatch")
    no_hybrid = variant(gralora, tmp_path / "no_hybrid", config=set_key("hybrid_r", 0))
    assert_error(invalid_dir(no_hybrid, None), "inconsistent_adapter", "unexpected_tensor")
    general = variant(gralora, tmp_path / "general", tensors=drop("gralora_A_general.weight"))
    assert_error(invalid_dir(general, None), "inconsistent_adapter", "missing_tensor")
    bad = variant(gralora, tmp_path / "bad", config=set_key("hybrid_r", -1))
    assert_error(invalid_dir(bad, None), "invalid_adapter_config", "schema")


def test_glora_paths_validate_and_break(llama: Path, tmp_path: Path) -> None:
    adapter = build(llama, peft.GloraConfig(r=4, target_modules=TARGETS), tmp_path / "a")
    report = validate_dir(adapter, llama)
    assert (report.peft_type, report.r) == ("GLORA", 4)
    assert validate_dir(adapter, None).target_modules == report.target_modules
    config = peft.GloraConfig(
        r=4, config_A_B="constant", config_C="none", config_D_E="none", target_modules=TARGETS
    )
    constant = build(llama, config, tmp_path / "constant")
    assert validate_dir(constant, llama).peft_type == "GLORA"
    wide = variant(adapter, tmp_path / "wide", tensors=reshape("down_proj.glora_A.Xu", (4, 32)))
    assert_error(invalid_dir(wide, llama), "incompatible_base", "shape_mismatch")
    rank = variant(adapter, tmp_path / "rank", tensors=reshape("q_proj.glora_B.Xd", (32, 8)))
    assert_error(invalid_dir(rank, None), "inconsistent_adapter", "shape_mismatch")
    vector = variant(adapter, tmp_path / "vector", config=set_key("config_A_B", "vector"))
    assert_error(invalid_dir(vector, None), "inconsistent_adapter", "unexpected_tensor")
    no_xd = variant(adapter, tmp_path / "no_xd", tensors=drop("q_proj.glora_A.Xd"))
    assert_error(invalid_dir(no_xd, None), "inconsistent_adapter", "missing_tensor")
    scalar = variant(constant, tmp_path / "scalar", tensors=reshape("q_proj.glora_A.X", (32, 1)))
    assert_error(invalid_dir(scalar, None), "inconsistent_adapter", "shape_mismatch")
    bad = variant(adapter, tmp_path / "bad", config=set_key("r", 4.5))
    assert_error(invalid_dir(bad, None), "invalid_adapter_config", "schema")
