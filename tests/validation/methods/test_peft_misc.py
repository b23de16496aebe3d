"""POLY, ADAPTION_PROMPT, FROD, ADAMSS: real peft adapters validate; broken variants fail with
their exact code and reason."""

from __future__ import annotations

import json
import shutil
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

ATTN = "base_model.model.model.layers.1.self_attn"


@pytest.fixture(scope="module")
def adaption(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.AdaptionPromptConfig(adapter_len=4, adapter_layers=1, task_type="CAUSAL_LM")
    return build(llama, config, tmp_path_factory.mktemp("adaption") / "a")


def test_adaption_prompt_validates(adaption: Path, llama: Path) -> None:
    report = validate_dir(adaption, llama)
    assert report.peft_type == "ADAPTION_PROMPT"
    assert report.checked_against_base
    assert report.target_modules == ["model.layers.1.self_attn"]
    assert report.trainable_params == 4 * 32 + 1
    assert validate_dir(adaption, None).target_modules == report.target_modules


def test_adaption_prompt_on_gpt2_all_layers(gpt2: Path, tmp_path: Path) -> None:
    config = peft.AdaptionPromptConfig(adapter_len=3, adapter_layers=2, task_type="CAUSAL_LM")
    adapter = build(gpt2, config, tmp_path / "a")
    report = validate_dir(adapter, gpt2)
    assert report.target_modules == ["transformer.h.0.attn", "transformer.h.1.attn"]


def test_adaption_prompt_broken_variants(adaption: Path, llama: Path, tmp_path: Path) -> None:
    wide = variant(adaption, tmp_path / "wide", tensors=reshape("adaption_prompt", (1, 4, 48)))
    assert_error(invalid_dir(wide, llama), "incompatible_base", "shape_mismatch")
    assert validate_dir(wide, None).trainable_params == 4 * 48 + 1
    short = variant(adaption, tmp_path / "short", config=set_key("adapter_len", 5))
    assert_error(invalid_dir(short, None), "inconsistent_adapter", "shape_mismatch")
    gate = variant(adaption, tmp_path / "gate", tensors=reshape("adaption_gate", (2,)))
    assert_error(invalid_dir(gate, None), "inconsistent_adapter", "shape_mismatch")
    no_gate = variant(adaption, tmp_path / "no_gate", tensors=drop("adaption_gate"))
    assert_error(invalid_dir(no_gate, None), "inconsistent_adapter", "missing_tensor")
    extra = variant(adaption, tmp_path / "extra", tensors=add(f"{ATTN}.lora_A.weight", (8, 32)))
    assert_error(invalid_dir(extra, None), "inconsistent_adapter", "unexpected_tensor")
    mlp = "base_model.model.model.layers.1.mlp.adaption_gate"
    elsewhere = variant(adaption, tmp_path / "elsewhere", tensors=add(mlp, (1,)))
    assert_error(invalid_dir(elsewhere, None), "inconsistent_adapter", "unexpected_tensor")
    layers = variant(adaption, tmp_path / "layers", config=set_key("adapter_layers", 2))
    assert_error(invalid_dir(layers, None), "inconsistent_adapter", "config_mismatch")
    no_len = variant(adaption, tmp_path / "no_len", config=set_key("adapter_len", None))
    assert_error(invalid_dir(no_len, None), "invalid_adapter_config", "schema")


def test_adaption_prompt_must_sit_in_the_last_layers(
    adaption: Path, llama: Path, tmp_path: Path
) -> None:
    def first_layer(t: Tensors) -> Tensors:
        return {k.replace("layers.1.", "layers.0."): v for k, v in t.items()}

    low = variant(adaption, tmp_path / "low", tensors=first_layer)
    assert validate_dir(low, None).target_modules == ["model.layers.0.self_attn"]
    assert_error(invalid_dir(low, llama), "incompatible_base", "missing_modules")
    deep = variant(adaption, tmp_path / "deep", config=set_key("adapter_layers", 3))
    assert_error(invalid_dir(deep, None), "inconsistent_adapter", "config_mismatch")


def test_adaption_prompt_refuses_a_base_peft_cannot_adapt(
    adaption: Path, gpt2: Path, llama: Path, tmp_path: Path
) -> None:
    # gpt2 has no ``self_attn`` modules for the llama adapter's prompts.
    assert_error(invalid_dir(adaption, gpt2), "incompatible_base", "missing_modules")
    other = tmp_path / "qwen2"
    shutil.copytree(llama, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "model_type": "qwen2"}))
    assert_error(invalid_dir(adaption, other), "incompatible_base", "unsupported_model")


@pytest.fixture(scope="module")
def poly(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.PolyConfig(
        r=4, n_tasks=3, n_skills=4, n_splits=2, target_modules=["q_proj", "v_proj"]
    )
    return build(llama, config, tmp_path_factory.mktemp("poly") / "a")


def test_poly_validates(poly: Path, llama: Path) -> None:
    report = validate_dir(poly, llama)
    assert (report.peft_type, report.r) == ("POLY", 4)
    assert report.checked_against_base
    assert len(report.target_modules) == 4
    assert validate_dir(poly, None).target_modules == report.target_modules


def test_poly_defaults(llama: Path, tmp_path: Path) -> None:
    adapter = build(llama, peft.PolyConfig(target_modules=["k_proj"]), tmp_path / "a")
    assert validate_dir(adapter, llama).r == 8


def test_poly_broken_variants(poly: Path, llama: Path, tmp_path: Path) -> None:
    lora_a = "q_proj.poly_lora_A"
    router = "v_proj.poly_router.module_logits"
    tasks = variant(poly, tmp_path / "tasks", tensors=reshape(router, (2, 8)))
    assert_error(invalid_dir(tasks, None), "inconsistent_adapter", "shape_mismatch")
    skills = variant(poly, tmp_path / "skills", config=set_key("n_skills", 3))
    assert_error(invalid_dir(skills, None), "inconsistent_adapter", "shape_mismatch")
    rank = variant(poly, tmp_path / "rank", tensors=reshape("v_proj.poly_lora_B", (2, 4, 5, 8)))
    assert_error(invalid_dir(rank, None), "inconsistent_adapter", "shape_mismatch")
    wide = variant(poly, tmp_path / "wide", tensors=reshape(lora_a, (2, 4, 32, 4)))
    assert validate_dir(wide, None).r == 4
    assert_error(invalid_dir(wide, llama), "incompatible_base", "shape_mismatch")
    out = variant(poly, tmp_path / "out", tensors=reshape("v_proj.poly_lora_B", (2, 4, 4, 16)))
    assert_error(invalid_dir(out, llama), "incompatible_base", "shape_mismatch")
    no_router = variant(poly, tmp_path / "no_router", tensors=drop(router))
    assert_error(invalid_dir(no_router, None), "inconsistent_adapter", "missing_tensor")
    extra = variant(poly, tmp_path / "extra", tensors=add(f"{ATTN}.q_proj.lora_A", (4, 32)))
    assert_error(invalid_dir(extra, None), "inconsistent_adapter", "unexpected_tensor")
    splits = variant(poly, tmp_path / "splits", config=set_key("n_splits", "2"))
    assert_error(invalid_dir(splits, None), "invalid_adapter_config", "schema")
