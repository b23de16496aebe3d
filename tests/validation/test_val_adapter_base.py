"""validate_adapter against a base, prompt methods, health and the report (one defect each)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from registry.validation import BaseManifest, validate_adapter

from .validation_builders import (
    GPT2_ATTN,
    LLAMA_Q,
    Lora,
    adapter_files,
    expect_invalid,
    expect_valid,
    f32,
    load_adapter,
    lora_tensors,
    st_bytes,
)

# --- base compatibility --------------------------------------------------------------------


def test_validate_conv1d_layout_is_in_out(
    fixtures_dir: Path, bases: dict[str, BaseManifest]
) -> None:
    # GPT-2 c_attn is stored [in=64, out=192]; A [r, out] / B [in, r] is the Linear misreading.
    config, tensors = load_adapter(fixtures_dir / "adapters/gpt2-lora-r4-cattn")
    assert expect_valid(config, tensors, bases["tiny-gpt2"]).checked_against_base
    tensors[f"{GPT2_ATTN}.lora_A.weight"] = f32(4, 192)
    tensors[f"{GPT2_ATTN}.lora_B.weight"] = f32(64, 4)
    err = expect_invalid(config, tensors, bases["tiny-gpt2"])
    assert (err.code, err.reason) == ("incompatible_base", "shape_mismatch")
    assert err.context["tensor"] == f"{GPT2_ATTN}.lora_A.weight"
    assert (err.context["expected"], err.context["actual"]) == (64, 192)


def test_validate_linear_layout_is_out_in(llama_lora: Lora, bases: dict[str, BaseManifest]) -> None:
    config, tensors = llama_lora
    v_proj = "base_model.model.model.layers.0.self_attn.v_proj"
    tensors[f"{v_proj}.lora_B.weight"] = f32(64, 2)  # v_proj weight is [32, 64]
    err = expect_invalid(config, tensors, bases["tiny-llama"])
    assert (err.code, err.reason) == ("incompatible_base", "shape_mismatch")
    assert err.context["module"] == "model.layers.0.self_attn.v_proj"


def test_validate_embedding_lora_vocab_mismatch(
    llama_lora: Lora, bases: dict[str, BaseManifest]
) -> None:
    config, tensors = llama_lora
    config["target_modules"] = ["q_proj", "v_proj", "embed_tokens"]
    emb = "base_model.model.model.embed_tokens"
    tensors[f"{emb}.lora_embedding_A"] = f32(2, 256)
    tensors[f"{emb}.lora_embedding_B"] = f32(64, 2)
    assert (
        expect_valid(config, tensors, bases["tiny-llama"]).target_modules[0] == "model.embed_tokens"
    )
    tensors[f"{emb}.lora_embedding_A"] = f32(2, 300)
    err = expect_invalid(config, tensors, bases["tiny-llama"])
    assert (err.code, err.reason) == ("incompatible_base", "vocab_mismatch")
    assert (err.context["expected"], err.context["actual"]) == (256, 300)


def test_validate_saved_embedding_with_resized_vocab(
    llama_lora: Lora, bases: dict[str, BaseManifest]
) -> None:
    config, tensors = llama_lora
    tensors["base_model.model.model.embed_tokens.base_layer.weight"] = f32(260, 64)
    err = expect_invalid(config, tensors, bases["tiny-llama"])
    assert (err.code, err.reason) == ("incompatible_base", "vocab_mismatch")


def test_validate_lm_head_lora_on_tied_gpt2(
    fixtures_dir: Path, bases: dict[str, BaseManifest]
) -> None:
    config, tensors = load_adapter(fixtures_dir / "adapters/gpt2-lora-r4-cattn")
    config["target_modules"] = ["c_attn", "lm_head"]
    tensors.update(lora_tensors("base_model.model.lm_head", 4, 64, 256))
    assert "lm_head" in expect_valid(config, tensors, bases["tiny-gpt2"]).target_modules
    tensors["base_model.model.lm_head.lora_B.weight"] = f32(300, 4)
    err = expect_invalid(config, tensors, bases["tiny-gpt2"])
    assert (err.code, err.reason) == ("incompatible_base", "vocab_mismatch")


def test_validate_lm_head_absent_from_untied_base_is_missing(
    fixtures_dir: Path, bases: dict[str, BaseManifest]
) -> None:
    config, tensors = load_adapter(fixtures_dir / "adapters/gpt2-lora-r4-cattn")
    config["target_modules"] = ["c_attn", "lm_head"]
    tensors.update(lora_tensors("base_model.model.lm_head", 4, 64, 256))
    gpt2 = bases["tiny-gpt2"]
    untied = BaseManifest(
        tensors=gpt2.tensors, config={**gpt2.config, "tie_word_embeddings": False}
    )
    err = expect_invalid(config, tensors, untied)
    assert (err.code, err.reason) == ("incompatible_base", "missing_modules")
    assert err.context["module"] == "lm_head"


def test_validate_modules_to_save_shape(fixtures_dir: Path, bases: dict[str, BaseManifest]) -> None:
    config, tensors = load_adapter(fixtures_dir / "adapters/llama-lora-modules-to-save")
    tensors["base_model.model.lm_head.weight"] = f32(256, 32)
    err = expect_invalid(config, tensors, bases["tiny-llama"])
    assert (err.code, err.reason) == ("incompatible_base", "shape_mismatch")
    assert err.context["tensor"] == "base_model.model.lm_head.weight"


def test_validate_modules_to_save_missing_in_base(
    fixtures_dir: Path, bases: dict[str, BaseManifest]
) -> None:
    config, tensors = load_adapter(fixtures_dir / "adapters/llama-lora-modules-to-save")
    config["modules_to_save"] = ["score"]
    tensors["base_model.model.score.weight"] = tensors.pop("base_model.model.lm_head.weight")
    err = expect_invalid(config, tensors, bases["tiny-llama"])
    assert (err.code, err.reason) == ("incompatible_base", "missing_modules")
    config["task_type"] = "SEQ_CLS"  # peft adds a fresh head: a warning, not an error
    assert expect_valid(config, tensors, bases["tiny-llama"]).warnings


def test_validate_base_checkpoint_without_backbone_prefix(
    fixtures_dir: Path, bases: dict[str, BaseManifest]
) -> None:
    # The original GPT-2 checkpoint stores "h.0.attn.c_attn.weight", without "transformer.".
    gpt2 = bases["tiny-gpt2"]
    bare = BaseManifest(
        tensors={k.removeprefix("transformer."): v for k, v in gpt2.tensors.items()},
        config=gpt2.config,
    )
    config, tensors = load_adapter(fixtures_dir / "adapters/gpt2-lora-r8-attn-mlp")
    assert expect_valid(config, tensors, bare).checked_against_base


# --- prompt learning ----------------------------------------------------------------------


def test_validate_prefix_tuning_gqa_width(
    fixtures_dir: Path, bases: dict[str, BaseManifest]
) -> None:
    # Under GQA the prefix width is num_layers * 2 * kv_width (32), not the hidden size (64).
    config, tensors = load_adapter(fixtures_dir / "adapters/llama-prefix-tuning")
    assert expect_valid(config, tensors, bases["tiny-llama"]).checked_against_base
    config["token_dim"], config["num_attention_heads"] = 64, 4
    tensors["prompt_embeddings"] = f32(4, 2 * 2 * 64)
    err = expect_invalid(config, tensors, bases["tiny-llama"])
    assert (err.code, err.reason) == ("incompatible_base", "shape_mismatch")
    assert err.context["field"] == "token_dim"
    assert (err.context["expected"], err.context["actual"]) == (32, 64)


def test_validate_prefix_tuning_layer_count(
    fixtures_dir: Path, bases: dict[str, BaseManifest]
) -> None:
    config, tensors = load_adapter(fixtures_dir / "adapters/gpt2-prefix-tuning")
    config["num_layers"] = 3
    tensors["prompt_embeddings"] = f32(8, 3 * 2 * 64)
    err = expect_invalid(config, tensors, bases["tiny-gpt2"])
    assert (err.code, err.reason) == ("incompatible_base", "shape_mismatch")
    assert err.context["field"] == "num_layers"


def test_validate_prompt_tuning_hidden_size(
    fixtures_dir: Path, bases: dict[str, BaseManifest]
) -> None:
    config, tensors = load_adapter(fixtures_dir / "adapters/gpt2-prompt-tuning")
    assert expect_valid(config, tensors, bases["tiny-gpt2"]).r is None
    err = expect_invalid(
        config,
        tensors,
        BaseManifest(tensors={}, config={"hidden_size": 32, "num_attention_heads": 4}),
    )
    assert (err.code, err.reason) == ("incompatible_base", "shape_mismatch")


def test_validate_prompt_tuning_rows_vs_num_virtual_tokens(
    fixtures_dir: Path, bases: dict[str, BaseManifest]
) -> None:
    config, tensors = load_adapter(fixtures_dir / "adapters/gpt2-prompt-tuning")
    config["num_virtual_tokens"] = 12
    err = expect_invalid(config, tensors, bases["tiny-gpt2"])
    assert (err.code, err.reason) == ("inconsistent_adapter", "config_mismatch")


def test_validate_prompt_tuning_extra_tensor(fixtures_dir: Path) -> None:
    config, tensors = load_adapter(fixtures_dir / "adapters/gpt2-p-tuning")
    tensors["prompt_encoder.mlp.weight"] = f32(2, 2)
    err = expect_invalid(config, tensors, None)
    assert (err.code, err.reason) == ("inconsistent_adapter", "unexpected_tensor")


def test_validate_prompt_tuning_missing_embeddings(fixtures_dir: Path) -> None:
    config, _ = load_adapter(fixtures_dir / "adapters/gpt2-p-tuning")
    err = expect_invalid(config, {"other": f32(2)}, None)
    assert err.code == "inconsistent_adapter"


# --- health, report -------------------------------------------------------


def test_validate_nan_in_lora_weights(llama_lora: Lora, bases: dict[str, BaseManifest]) -> None:
    config, tensors = llama_lora
    tensors[f"{LLAMA_Q}.lora_A.weight"][1, 5] = np.nan
    err = expect_invalid(config, tensors, bases["tiny-llama"])
    assert (err.code, err.reason) == ("unhealthy_tensors", "nan_or_inf")
    assert err.context["tensor"] == f"{LLAMA_Q}.lora_A.weight"


def test_validate_nan_scan_skipped_over_limit(
    llama_lora: Lora,
) -> None:
    config, tensors = llama_lora
    tensors[f"{LLAMA_Q}.lora_A.weight"][1, 5] = np.inf
    report = validate_adapter(adapter_files(config, tensors), base=None, scan_limit_bytes=16)
    assert any("skipped" in w for w in report.warnings)


def test_validate_all_zero_lora_b_is_a_warning(
    llama_lora: Lora, bases: dict[str, BaseManifest]
) -> None:
    config, tensors = llama_lora
    tensors[f"{LLAMA_Q}.lora_B.weight"] = np.zeros((64, 2), np.float32)
    report = expect_valid(config, tensors, bases["tiny-llama"])
    assert len(report.warnings) == 1
    assert f"{LLAMA_Q}.lora_B.weight" in report.warnings[0]


def test_validate_report_summarises_adapter(
    fixtures_dir: Path, bases: dict[str, BaseManifest]
) -> None:
    config, tensors = load_adapter(fixtures_dir / "adapters/llama-lora-rank-pattern")
    tensors[f"{LLAMA_Q}.lora_A.weight"] = tensors[f"{LLAMA_Q}.lora_A.weight"].astype(np.float16)
    report = expect_valid(config, tensors, bases["tiny-llama"])
    assert report.r == 8
    assert report.lora_alpha == 8
    assert report.rank_pattern == {"v_proj": 8}
    assert report.dtype == "mixed"
    assert report.tensor_count == 12
    assert report.trainable_params == 3584
    assert len(report.target_modules) == 6
    assert report.to_json()["files"]["adapter_model.safetensors"] == len(st_bytes(tensors))
