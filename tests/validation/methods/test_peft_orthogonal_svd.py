"""OSF and PSOFT (orthogonal methods on the base weight's SVD): real peft adapters validate;
each broken variant gives its code and reason."""

from __future__ import annotations

from pathlib import Path

import peft

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
TARGETS = ["q_proj", "v_proj", "down_proj"]


def test_osf_validates_by_default_and_with_a_rank(llama: Path, tmp_path: Path) -> None:
    default = build(llama, peft.OSFConfig(target_modules=TARGETS), tmp_path / "default")
    report = validate_dir(default, llama)
    assert report.peft_type == "OSF"
    assert validate_dir(default, None).trainable_params == report.trainable_params
    config = peft.OSFConfig(effective_rank=4, target_modules=TARGETS)
    ranked = build(llama, config, tmp_path / "ranked")
    assert validate_dir(ranked, llama).trainable_params > report.trainable_params


def test_osf_broken_variants(llama: Path, tmp_path: Path) -> None:
    adapter = build(llama, peft.OSFConfig(target_modules=TARGETS), tmp_path / "a")
    low = variant(adapter, tmp_path / "low", tensors=reshape("q_proj.osf_svd_params.S_low", (8,)))
    assert_error(invalid_dir(low, None), "inconsistent_adapter", "shape_mismatch")
    out = variant(
        adapter, tmp_path / "out", tensors=reshape("v_proj.osf_svd_params.U_low", (32, 8))
    )
    assert_error(invalid_dir(out, llama), "incompatible_base", "shape_mismatch")
    no_v = variant(adapter, tmp_path / "no_v", tensors=drop("q_proj.osf_svd_params.V_low"))
    assert_error(invalid_dir(no_v, None), "inconsistent_adapter", "missing_tensor")
    extra = variant(adapter, tmp_path / "extra", tensors=add(f"{Q}.osf_svd_params.U_high", (32,)))
    assert_error(invalid_dir(extra, None), "inconsistent_adapter", "unexpected_tensor")


def test_psoft_orthogonal_and_full_rotation(llama: Path, tmp_path: Path) -> None:
    adapter = build(llama, peft.PsoftConfig(r=8, target_modules=TARGETS), tmp_path / "a")
    report = validate_dir(adapter, llama)
    assert (report.peft_type, report.r) == ("PSOFT", 8)
    assert report.trainable_params == 6 * (28 + 8 + 8)
    assert validate_dir(adapter, None).trainable_params == report.trainable_params
    config = peft.PsoftConfig(r=8, psoft_orth=False, psoft_mag_a=False, target_modules=TARGETS)
    full = build(llama, config, tmp_path / "full")
    assert validate_dir(full, llama).trainable_params == 6 * (64 + 8)


def test_psoft_broken_variants(llama: Path, tmp_path: Path) -> None:
    adapter = build(llama, peft.PsoftConfig(r=8, target_modules=TARGETS), tmp_path / "a")
    tri = variant(adapter, tmp_path / "tri", tensors=reshape("q_proj.psoft_R.weight", (8, 8)))
    assert_error(invalid_dir(tri, None), "inconsistent_adapter", "shape_mismatch")
    full = variant(adapter, tmp_path / "full", config=set_key("psoft_orth", False))
    assert_error(invalid_dir(full, None), "inconsistent_adapter", "shape_mismatch")
    no_mag = variant(adapter, tmp_path / "no_mag", config=set_key("psoft_mag_a", False))
    assert_error(invalid_dir(no_mag, None), "inconsistent_adapter", "unexpected_tensor")
    no_b = variant(adapter, tmp_path / "no_b", tensors=drop("q_proj.psoft_R.vector_b"))
    assert_error(invalid_dir(no_b, None), "inconsistent_adapter", "missing_tensor")
    bad = variant(adapter, tmp_path / "bad", config=set_key("psoft_orth", "yes"))
    assert_error(invalid_dir(bad, None), "invalid_adapter_config", "schema")
