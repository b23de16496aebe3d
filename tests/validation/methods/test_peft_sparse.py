"""SHIRA, SUPERTUNING and TRAINABLE_TOKENS: real peft adapters validate; each broken variant
(indices out of range, of the wrong dtype, counts that disagree, ...) gives its code and reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import peft
import pytest

from registry.validation import validate_adapter
from registry.validation.manifest import read_base_dir
from tests.validation.methods.method_builders import (
    Tensors,
    add,
    assert_error,
    build,
    dir_files,
    drop,
    first,
    invalid_dir,
    reshape,
    set_key,
    validate_dir,
    variant,
)

Q = "base_model.model.model.layers.0.self_attn.q_proj"


def change(suffix: str, new: Callable[[np.ndarray], np.ndarray]) -> Callable[[Tensors], Tensors]:
    def edit(t: Tensors) -> Tensors:
        name = first(t, suffix)
        t[name] = new(t[name])
        return t

    return edit


@pytest.fixture(scope="module")
def shira(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.ShiraConfig(r=2, target_modules=["q_proj", "v_proj"], random_seed=1)
    return build(llama, config, tmp_path_factory.mktemp("shira") / "a")


def test_shira_validates_with_and_without_base(shira: Path, llama: Path) -> None:
    report = validate_dir(shira, llama)
    assert (report.peft_type, report.r, report.checked_against_base) == ("SHIRA", 2, True)
    assert len(report.target_modules) == 4
    assert validate_dir(shira, None).target_modules == report.target_modules


def test_shira_indices_out_of_the_base_weight(shira: Path, llama: Path, tmp_path: Path) -> None:
    def row_past(a: np.ndarray) -> np.ndarray:  # v_proj is [16, 32]: row 16 is past its end
        out = a.copy()
        out[0, -1] = 16
        return out

    rows = variant(shira, tmp_path / "rows", tensors=change("v_proj.shira_indices", row_past))
    assert validate_dir(rows, None).peft_type == "SHIRA"
    error = invalid_dir(rows, llama)
    assert_error(error, "incompatible_base", "index_out_of_range")
    assert error.context["bound"] == 16

    def col_past(a: np.ndarray) -> np.ndarray:
        out = a.copy()
        out[1, 0] = 32
        return out

    cols = variant(shira, tmp_path / "cols", tensors=change("q_proj.shira_indices", col_past))
    assert_error(invalid_dir(cols, llama), "incompatible_base", "index_out_of_range")
    # The header-only path (indices above the scan limit) reads no index: a warning says so.
    report = validate_adapter(dir_files(cols), base=read_base_dir(llama), scan_limit_bytes=0)
    (warning,) = [w for w in report.warnings if w.startswith("shira_indices:")]
    assert warning.endswith("their dtypes and counts are checked, their ranges not")
    negative = variant(
        shira, tmp_path / "neg", tensors=change("q_proj.shira_indices", lambda a: -a)
    )
    assert_error(invalid_dir(negative, None), "inconsistent_adapter", "index_out_of_range")


def test_shira_broken_variants(shira: Path, llama: Path, tmp_path: Path) -> None:
    floats = variant(
        shira, tmp_path / "f", tensors=change("q_proj.shira_indices", lambda a: a.astype("f4"))
    )
    assert_error(invalid_dir(floats, None), "inconsistent_adapter", "dtype_mismatch")
    ints = variant(
        shira, tmp_path / "i", tensors=change("q_proj.shira_weight", lambda a: a.astype("i4"))
    )
    assert_error(invalid_dir(ints, None), "inconsistent_adapter", "dtype_mismatch")
    short = variant(
        shira, tmp_path / "s", tensors=change("q_proj.shira_weight", lambda a: a[:-1].copy())
    )
    assert_error(invalid_dir(short, None), "inconsistent_adapter", "shape_mismatch")
    wrong_r = variant(shira, tmp_path / "r", config=set_key("r", 3))
    assert_error(invalid_dir(wrong_r, llama), "incompatible_base", "shape_mismatch")
    no_idx = variant(shira, tmp_path / "d", tensors=drop("q_proj.shira_indices"))
    assert_error(invalid_dir(no_idx, None), "inconsistent_adapter", "missing_tensor")
    flat = variant(shira, tmp_path / "flat", tensors=reshape("q_proj.shira_indices", (256,)))
    assert_error(invalid_dir(flat, None), "inconsistent_adapter", "shape_mismatch")


@pytest.fixture(scope="module")
def supertuning(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.SupertuningConfig(target_modules=["q_proj", "v_proj"], sparsity=0.9)
    return build(llama, config, tmp_path_factory.mktemp("super") / "a")


def test_supertuning_validates(supertuning: Path, llama: Path, tmp_path: Path) -> None:
    report = validate_dir(supertuning, llama)
    assert (report.peft_type, report.checked_against_base) == ("SUPERTUNING", True)
    assert validate_dir(supertuning, None).target_modules == report.target_modules
    supra = peft.SupertuningConfig(target_modules=["q_proj"], sparsity=0.9, r=4)
    assert validate_dir(build(llama, supra, tmp_path / "supra"), llama).r == 4
    lean = peft.SupertuningConfig(
        target_modules=["q_proj"], sparsity=0.9, save_precomputed_indices=False
    )
    assert validate_dir(build(llama, lean, tmp_path / "lean"), llama).tensor_count == 2


def test_supertuning_broken_variants(supertuning: Path, llama: Path, tmp_path: Path) -> None:
    past = variant(
        supertuning,
        tmp_path / "past",
        tensors=change("v_proj.supertuning_indices", lambda a: a + 16 * 32),
    )
    assert_error(invalid_dir(past, llama), "incompatible_base", "index_out_of_range")
    short = variant(
        supertuning,
        tmp_path / "short",
        tensors=change("q_proj.supertuning_values", lambda a: a[:-1].copy()),
    )
    assert_error(invalid_dir(short, None), "inconsistent_adapter", "shape_mismatch")
    lora = variant(
        supertuning, tmp_path / "lora", tensors=add(f"{Q}.supertuning_lora_A.weight", (4, 32))
    )
    assert_error(invalid_dir(lora, None), "inconsistent_adapter", "unexpected_tensor")
    unsaved = variant(
        supertuning, tmp_path / "unsaved", config=set_key("save_precomputed_indices", False)
    )
    assert_error(invalid_dir(unsaved, None), "inconsistent_adapter", "unexpected_tensor")


@pytest.fixture(scope="module")
def tokens(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.TrainableTokensConfig(token_indices=[3, 1, 127])
    return build(llama, config, tmp_path_factory.mktemp("tokens") / "a")


def test_trainable_tokens_validates(tokens: Path, llama: Path) -> None:
    report = validate_dir(tokens, llama)
    assert (report.peft_type, report.target_modules) == ("TRAINABLE_TOKENS", ["model.embed_tokens"])
    assert validate_dir(tokens, None).checked_against_base is False


def test_trainable_tokens_on_an_untied_output_embedding(llama: Path, tmp_path: Path) -> None:
    config = peft.TrainableTokensConfig(
        token_indices=[2, 4], target_modules=["embed_tokens", "lm_head"]
    )
    adapter = build(llama, config, tmp_path / "a")
    assert validate_dir(adapter, llama).tensor_count == 2
    past = variant(adapter, tmp_path / "past", config=set_key("token_indices", [2, 128]))
    assert_error(invalid_dir(past, llama), "incompatible_base", "index_out_of_range")


def test_trainable_tokens_tied_output_embedding(gpt2: Path, tmp_path: Path) -> None:
    config = peft.TrainableTokensConfig(token_indices=[5, 9])
    adapter = build(gpt2, config, tmp_path / "a")
    report = validate_dir(adapter, gpt2)
    assert (report.target_modules, report.tensor_count) == (["transformer.wte"], 2)
    past = variant(adapter, tmp_path / "past", config=set_key("token_indices", [5, 128]))
    assert_error(invalid_dir(past, gpt2), "incompatible_base", "index_out_of_range")
    head = "base_model.model.lm_head.trainable_tokens_delta"
    wide = variant(adapter, tmp_path / "wide", tensors=reshape(head, (2, 16)))
    assert_error(invalid_dir(wide, None), "inconsistent_adapter", "shape_mismatch")


def test_trainable_tokens_broken_variants(tokens: Path, llama: Path, tmp_path: Path) -> None:
    vocab = variant(tokens, tmp_path / "vocab", config=set_key("token_indices", [3, 1, 128]))
    assert validate_dir(vocab, None).peft_type == "TRAINABLE_TOKENS"
    assert_error(invalid_dir(vocab, llama), "incompatible_base", "index_out_of_range")
    fewer = variant(tokens, tmp_path / "fewer", config=set_key("token_indices", [3, 1]))
    assert_error(invalid_dir(fewer, None), "inconsistent_adapter", "shape_mismatch")
    bad = variant(tokens, tmp_path / "bad", config=set_key("token_indices", [3, -1, 7]))
    assert_error(invalid_dir(bad, None), "invalid_adapter_config", "schema")
    wide = variant(tokens, tmp_path / "wide", tensors=reshape("trainable_tokens_delta", (3, 16)))
    assert_error(invalid_dir(wide, llama), "incompatible_base", "shape_mismatch")
