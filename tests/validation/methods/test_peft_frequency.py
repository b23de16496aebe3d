"""FourierFT: real peft adapters validate (per-module n_frequency_pattern included); broken
variants fail with their code and reason."""

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

T = ["q_proj", "v_proj", "up_proj"]
Q = "base_model.model.model.layers.0.self_attn.q_proj"


@pytest.fixture(scope="module")
def fourierft(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.FourierFTConfig(
        n_frequency=20, n_frequency_pattern={"v_proj": 12}, target_modules=T
    )
    return build(llama, config, tmp_path_factory.mktemp("fourierft") / "a")


def test_fourierft_validates_with_its_frequency_pattern(fourierft: Path, llama: Path) -> None:
    report = validate_dir(fourierft, llama)
    assert report.peft_type == "FOURIERFT"
    assert report.checked_against_base
    assert validate_dir(fourierft, None).target_modules == report.target_modules


def test_fourierft_gpt2(gpt2: Path, tmp_path: Path) -> None:
    config = peft.FourierFTConfig(n_frequency=30, target_modules=["c_attn"], fan_in_fan_out=True)
    adapter = build(gpt2, config, tmp_path / "a")
    assert validate_dir(adapter, gpt2).peft_type == "FOURIERFT"


def test_fourierft_module_missing_from_the_base(
    fourierft: Path, llama: Path, tmp_path: Path
) -> None:
    nope = "base_model.model.model.layers.0.self_attn.nope_proj.fourierft_spectrum"
    missing = variant(
        fourierft,
        tmp_path / "missing",
        tensors=add(nope, (20,)),
        config=set_key("target_modules", [*T, "nope_proj"]),
    )
    assert_error(invalid_dir(missing, llama), "incompatible_base", "missing_modules")


def test_fourierft_broken_variants(fourierft: Path, tmp_path: Path) -> None:
    wrong = variant(
        fourierft, tmp_path / "wrong", tensors=reshape("v_proj.fourierft_spectrum", (20,))
    )
    assert_error(invalid_dir(wrong, None), "inconsistent_adapter", "shape_mismatch")
    no_pattern = variant(fourierft, tmp_path / "np", config=set_key("n_frequency_pattern", {}))
    assert_error(invalid_dir(no_pattern, None), "inconsistent_adapter", "shape_mismatch")
    bad = variant(
        fourierft, tmp_path / "bad", config=set_key("n_frequency_pattern", {"v_proj": "1"})
    )
    assert_error(invalid_dir(bad, None), "invalid_adapter_config", "schema")
    listed = variant(fourierft, tmp_path / "listed", config=set_key("n_frequency_pattern", [1]))
    assert_error(invalid_dir(listed, None), "invalid_adapter_config", "schema")
    flat = variant(
        fourierft, tmp_path / "flat", tensors=reshape("q_proj.fourierft_spectrum", (4, 5))
    )
    assert_error(invalid_dir(flat, None), "inconsistent_adapter", "shape_mismatch")
    fewer = variant(fourierft, tmp_path / "fewer", config=set_key("n_frequency", 10))
    assert_error(invalid_dir(fewer, None), "inconsistent_adapter", "shape_mismatch")
    extra = variant(fourierft, tmp_path / "extra", tensors=add(f"{Q}.fourierft_indices", (2, 20)))
    assert_error(invalid_dir(extra, None), "inconsistent_adapter", "unexpected_tensor")


@pytest.fixture(scope="module")
def waveft(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.WaveFTConfig(
        n_frequency=64, n_frequency_pattern={"up_proj": 40}, target_modules=T
    )
    return build(llama, config, tmp_path_factory.mktemp("waveft") / "a")


def test_waveft_validates_with_its_frequency_pattern(waveft: Path, llama: Path) -> None:
    report = validate_dir(waveft, llama)
    assert (report.peft_type, report.checked_against_base) == ("WAVEFT", True)
    assert validate_dir(waveft, None).target_modules == report.target_modules


def test_waveft_proportional_sizes_are_peft_s_own(llama: Path, tmp_path: Path) -> None:
    config = peft.WaveFTConfig(n_frequency=64, proportional_parameters=True, target_modules=T)
    adapter = build(llama, config, tmp_path / "a")
    assert validate_dir(adapter, llama).peft_type == "WAVEFT"
    flat = variant(adapter, tmp_path / "flat", tensors=reshape("q_proj.waveft_spectrum", (4, 16)))
    assert_error(invalid_dir(flat, None), "inconsistent_adapter", "shape_mismatch")


def test_waveft_broken_variants(waveft: Path, tmp_path: Path) -> None:
    wrong = variant(waveft, tmp_path / "wrong", tensors=reshape("up_proj.waveft_spectrum", (64,)))
    assert_error(invalid_dir(wrong, None), "inconsistent_adapter", "shape_mismatch")
    fixed = variant(waveft, tmp_path / "fixed", config=set_key("proportional_parameters", "yes"))
    assert_error(invalid_dir(fixed, None), "invalid_adapter_config", "schema")
    extra = variant(waveft, tmp_path / "extra", tensors=add(f"{Q}.waveft_indices", (2, 64)))
    assert_error(invalid_dir(extra, None), "inconsistent_adapter", "unexpected_tensor")
