"""MULTITASK_PROMPT_TUNING, CPT and CARTRIDGE: real peft adapters validate; broken variants fail
with their exact code and reason."""

from __future__ import annotations

from pathlib import Path

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


@pytest.fixture(scope="module")
def mpt(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.MultitaskPromptTuningConfig(
        num_virtual_tokens=5, num_tasks=3, num_ranks=2, task_type="CAUSAL_LM"
    )
    return build(llama, config, tmp_path_factory.mktemp("mpt") / "a")


def test_mpt_validates(mpt: Path, llama: Path) -> None:
    report = validate_dir(mpt, llama)
    assert report.peft_type == "MULTITASK_PROMPT_TUNING"
    assert report.checked_against_base
    assert report.trainable_params == 5 * 32 + 3 * 5 * 2 + 3 * 2 * 32
    assert validate_dir(mpt, None).tensor_count == 3


def test_mpt_broken_variants(mpt: Path, llama: Path, tmp_path: Path) -> None:
    cols = variant(mpt, tmp_path / "cols", tensors=reshape("prefix_task_cols", (3, 5, 3)))
    assert_error(invalid_dir(cols, None), "inconsistent_adapter", "config_mismatch")
    tasks = variant(mpt, tmp_path / "tasks", config=set_key("num_tasks", 4))
    assert_error(invalid_dir(tasks, None), "inconsistent_adapter", "config_mismatch")
    rows = variant(mpt, tmp_path / "rows", tensors=drop("prefix_task_rows"))
    assert_error(invalid_dir(rows, None), "inconsistent_adapter", "missing_tensor")
    bad = variant(mpt, tmp_path / "bad", config=set_key("num_ranks", 0))
    assert_error(invalid_dir(bad, None), "invalid_adapter_config", "schema")

    def wider(t: Tensors) -> Tensors:
        t = reshape("prompt_embeddings", (5, 48))(t)
        return reshape("prefix_task_rows", (3, 2, 48))(t)

    wide = variant(mpt, tmp_path / "wide", tensors=wider)
    assert validate_dir(wide, None).tensor_count == 3
    assert_error(invalid_dir(wide, llama), "incompatible_base", "shape_mismatch")


@pytest.fixture(scope="module")
def cpt(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.CPTConfig(
        cpt_token_ids=[1, 2, 3, 4],
        cpt_mask=[1, 1, 1, 1],
        cpt_tokens_type_mask=[1, 2, 2, 3],
        task_type="CAUSAL_LM",
    )
    return build(llama, config, tmp_path_factory.mktemp("cpt") / "a")


def test_cpt_validates(cpt: Path, llama: Path) -> None:
    report = validate_dir(cpt, llama)
    assert (report.peft_type, report.checked_against_base) == ("CPT", True)
    assert report.trainable_params == 4 * 32


def test_cpt_broken_variants(cpt: Path, llama: Path, tmp_path: Path) -> None:
    ids = variant(cpt, tmp_path / "ids", config=set_key("cpt_token_ids", [1, 2, 3]))
    assert_error(invalid_dir(ids, None), "inconsistent_adapter", "config_mismatch")
    mask = variant(cpt, tmp_path / "mask", config=set_key("cpt_mask", "1111"))
    assert_error(invalid_dir(mask, None), "invalid_adapter_config", "schema")
    rows = variant(cpt, tmp_path / "rows", tensors=reshape("prompt_embeddings", (5, 32)))
    assert_error(invalid_dir(rows, None), "inconsistent_adapter", "config_mismatch")
    wide = variant(cpt, tmp_path / "wide", tensors=reshape("prompt_embeddings", (4, 48)))
    assert_error(invalid_dir(wide, llama), "incompatible_base", "shape_mismatch")


def test_shadow_is_refused_as_not_validated(llama: Path, tmp_path: Path) -> None:
    adapter = build(llama, peft.ShadowConfig(task_type="CAUSAL_LM"), tmp_path / "a")
    error = invalid_dir(adapter, llama)
    assert_error(error, "unknown_peft_type", "not_validated")
    assert "shadow_backbone" in error.context["why"]


@pytest.fixture(scope="module")
def cartridge(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.CartridgeConfig(num_virtual_tokens=4, num_frozen_tokens=1, task_type="CAUSAL_LM")
    return build(llama, config, tmp_path_factory.mktemp("cartridge") / "a")


def test_cartridge_validates_as_a_kv_prefix(cartridge: Path, llama: Path) -> None:
    report = validate_dir(cartridge, llama)
    assert (report.peft_type, report.checked_against_base) == ("CARTRIDGE", True)
    # [num_virtual_tokens, num_layers * 2 * kv width]: 2 layers, 2 KV heads of 8 (GQA).
    assert report.trainable_params == 4 * 2 * 2 * 16
    assert validate_dir(cartridge, None).tensor_count == 1


def test_cartridge_broken_variants(cartridge: Path, llama: Path, tmp_path: Path) -> None:
    rows = variant(cartridge, tmp_path / "rows", tensors=reshape("prompt_embeddings", (5, 64)))
    assert_error(invalid_dir(rows, None), "inconsistent_adapter", "config_mismatch")
    cols = variant(cartridge, tmp_path / "cols", tensors=reshape("prompt_embeddings", (4, 32)))
    assert_error(invalid_dir(cols, None), "inconsistent_adapter", "config_mismatch")
    layers = variant(cartridge, tmp_path / "layers", config=set_key("num_layers", 1))
    assert_error(invalid_dir(layers, None), "inconsistent_adapter", "config_mismatch")
    wide = variant(
        cartridge,
        tmp_path / "wide",
        tensors=reshape("prompt_embeddings", (4, 128)),
        config=set_key("token_dim", 32),
    )
    assert validate_dir(wide, None).trainable_params == 4 * 128
    assert_error(invalid_dir(wide, llama), "incompatible_base", "shape_mismatch")
    gone = variant(cartridge, tmp_path / "gone", tensors=drop("prompt_embeddings"))
    assert_error(invalid_dir(gone, None), "missing_weights", "no_tensors")
    extra = variant(cartridge, tmp_path / "extra", tensors=add("frozen_embedding", (1, 64)))
    assert_error(invalid_dir(extra, None), "inconsistent_adapter", "unexpected_tensor")
    frozen = variant(cartridge, tmp_path / "frozen", config=set_key("num_frozen_tokens", 5))
    assert_error(invalid_dir(frozen, None), "invalid_adapter_config", "schema")
    negative = variant(cartridge, tmp_path / "negative", config=set_key("num_frozen_tokens", -1))
    assert_error(invalid_dir(negative, None), "invalid_adapter_config", "schema")
