"""BEFT and VeRA: real peft adapters validate; each broken variant gives its code and reason."""

from __future__ import annotations

from pathlib import Path

import peft
import pytest

from tests.validation.methods.method_builders import (
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


@pytest.fixture(scope="module")
def beft(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.BeftConfig(target_modules=["q_proj", "v_proj", "down_proj"])
    return build(llama, config, tmp_path_factory.mktemp("beft") / "a")


def test_beft_validates_against_its_base(beft: Path, llama: Path) -> None:
    report = validate_dir(beft, llama)
    assert report.peft_type == "BEFT"
    assert report.checked_against_base
    assert len(report.target_modules) == 6
    assert report.trainable_params == 2 * (32 + 16 + 32)


def test_beft_broken_variants(beft: Path, llama: Path, tmp_path: Path) -> None:
    wrong = variant(beft, tmp_path / "shape", tensors=reshape("v_proj.beft_bias", (1, 32)))
    assert_error(invalid_dir(wrong, llama), "incompatible_base", "shape_mismatch")
    flat = variant(beft, tmp_path / "flat", tensors=reshape("q_proj.beft_bias", (32,)))
    assert_error(invalid_dir(flat, None), "inconsistent_adapter", "shape_mismatch")
    extra = variant(beft, tmp_path / "extra", tensors=add(f"{Q}.lora_A.weight", (8, 32)))
    assert_error(invalid_dir(extra, None), "inconsistent_adapter", "unexpected_tensor")
    untargeted = variant(beft, tmp_path / "untargeted", config=set_key("target_modules", ["k"]))
    assert_error(invalid_dir(untargeted, None), "inconsistent_adapter", "unexpected_tensor")
    module = "base_model.model.model.layers.0.self_attn.nope_proj.beft_bias"
    missing = variant(
        beft,
        tmp_path / "missing",
        tensors=add(module, (1, 32)),
        config=set_key("target_modules", ["q_proj", "v_proj", "down_proj", "nope_proj"]),
    )
    assert_error(invalid_dir(missing, llama), "incompatible_base", "missing_modules")


@pytest.fixture(scope="module")
def vera(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.VeraConfig(r=8, target_modules=["q_proj", "v_proj", "up_proj"])
    return build(llama, config, tmp_path_factory.mktemp("vera") / "a")


def test_vera_validates_with_its_shared_projections(vera: Path, llama: Path) -> None:
    report = validate_dir(vera, llama)
    assert (report.peft_type, report.r) == ("VERA", 8)
    assert validate_dir(vera, None).target_modules == report.target_modules


def test_vera_without_saved_projections(llama: Path, tmp_path: Path) -> None:
    config = peft.VeraConfig(r=4, target_modules=["q_proj"], save_projection=False)
    adapter = build(llama, config, tmp_path / "a")
    assert validate_dir(adapter, llama).r == 4
    extra = variant(adapter, tmp_path / "extra", tensors=add("base_model.vera_A", (4, 32)))
    assert_error(invalid_dir(extra, None), "inconsistent_adapter", "unexpected_tensor")


def test_vera_broken_variants(vera: Path, llama: Path, tmp_path: Path) -> None:
    no_a = variant(vera, tmp_path / "no_a", tensors=drop("base_model.vera_A"))
    assert_error(invalid_dir(no_a, None), "inconsistent_adapter", "missing_tensor")
    rank = variant(vera, tmp_path / "rank", tensors=reshape("q_proj.vera_lambda_d", (7,)))
    assert_error(invalid_dir(rank, None), "inconsistent_adapter", "shape_mismatch")
    narrow = variant(vera, tmp_path / "narrow", tensors=reshape("base_model.vera_B", (32, 8)))
    assert_error(invalid_dir(narrow, llama), "incompatible_base", "shape_mismatch")
    out = variant(vera, tmp_path / "out", tensors=reshape("v_proj.vera_lambda_b", (32,)))
    assert_error(invalid_dir(out, llama), "incompatible_base", "shape_mismatch")
    no_d = variant(vera, tmp_path / "no_d", tensors=drop("q_proj.vera_lambda_d"))
    assert_error(invalid_dir(no_d, None), "inconsistent_adapter", "missing_tensor")
    bad_r = variant(vera, tmp_path / "bad_r", config=set_key("r", "8"))
    assert_error(invalid_dir(bad_r, None), "invalid_adapter_config", "schema")
