"""MiSS (and the other block methods): real peft adapters validate; broken variants fail."""

from __future__ import annotations

from pathlib import Path

import peft
import pytest

from tests.validation.methods.method_builders import (
    add,
    assert_error,
    build,
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
def test_miss_bat_and_mini_shapes(llama: Path, tmp_path: Path, init: str, mini_r: int) -> None:
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
    bone = variant(miss, tmp_path / "bone", config=set_key("peft_type", "BONE"))
    error = invalid_dir(bone, None)
    assert error.code == "unknown_peft_type"
