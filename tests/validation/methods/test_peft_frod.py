"""FROD: real peft adapters validate; broken variants fail with their exact code and reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import peft
import pytest

from registry.validation.methods.peft_misc import frod_category
from tests.validation.methods.method_builders import (
    Tensors,
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

Q_V = "frod_V.self_attn_q_proj"


@pytest.fixture(scope="module")
def frod(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.FrodConfig(target_modules=["q_proj", "k_proj", "down_proj"], sparse_rate=0.05)
    return build(llama, config, tmp_path_factory.mktemp("frod") / "a")


def test_frod_validates(frod: Path, llama: Path) -> None:
    assert_valid_with_and_without_base(frod, llama, "FROD")
    report = validate_dir(frod, llama)
    assert len(report.target_modules) == 6
    # nnz = int(in * in * 0.05): 51 for q/k (in 32), 204 for down_proj (in 64); one V,
    # s_indices and s_size per category (self_attn_q_proj, self_attn_k_proj, mlp_down_proj).
    assert report.tensor_count == 6 * 2 + 3 * 3


@pytest.mark.parametrize("rate", [0.0, 0.0001, 1.0])
def test_frod_sparse_rate_sizes_the_sparse_part(llama: Path, tmp_path: Path, rate: float) -> None:
    # 0 -> no entries; a tiny rate -> at least 1; 1 -> every off-diagonal entry (32 * 31).
    adapter = build(
        llama, peft.FrodConfig(target_modules=["q_proj"], sparse_rate=rate), tmp_path / "a"
    )
    assert_valid_with_and_without_base(adapter, llama, "FROD")


def test_frod_on_gpt2_without_projection(gpt2: Path, tmp_path: Path) -> None:
    config = peft.FrodConfig(target_modules=["c_attn", "c_fc"], save_projection=False)
    adapter = build(gpt2, config, tmp_path / "a")
    assert_valid_with_and_without_base(adapter, gpt2, "FROD")
    assert validate_dir(adapter, gpt2).tensor_count == 4 * 2


def test_frod_categories_are_peft_category_from_key() -> None:
    assert frod_category("model.layers.0.self_attn.q_proj") == "self_attn_q_proj"
    assert frod_category("transformer.h.1.attn.c_attn") == "attn_c_attn"
    assert frod_category("encoder.layer.3.attention.output.dense") == "attention_output"
    assert frod_category("encoder.layer.3.output.dense") == "output_dense"
    assert frod_category("blocks.2.fc") == "fc"
    assert frod_category("classifier") == "classifier"


def test_frod_broken_variants(frod: Path, llama: Path, tmp_path: Path) -> None:
    def check(name: str, code: str, reason: str, base: Path | None = None, **edits: object) -> None:
        broken = variant(frod, tmp_path / name, **edits)  # type: ignore[arg-type]
        assert_error(invalid_dir(broken, base), code, reason)

    check("rate", "inconsistent_adapter", "shape_mismatch", config=set_key("sparse_rate", 0.1))
    check("v", "inconsistent_adapter", "shape_mismatch", tensors=reshape(Q_V, (16, 16)))
    idx = "frod_s_indices.mlp_down_proj"
    check("nnz", "inconsistent_adapter", "shape_mismatch", tensors=reshape(idx, (2, 200)))
    check("no_idx", "inconsistent_adapter", "missing_tensor", tensors=drop(idx))
    check("no_l", "inconsistent_adapter", "missing_tensor", tensors=drop("k_proj.frod_lambda_l"))
    v_proj = add("base_model.frod_V.self_attn_v_proj", (32, 32))
    check("v_proj", "inconsistent_adapter", "unexpected_tensor", tensors=v_proj)
    off = set_key("save_projection", False)
    check("off", "inconsistent_adapter", "unexpected_tensor", config=off)
    check("rate_str", "invalid_adapter_config", "schema", config=set_key("sparse_rate", "0.05"))
    wide = reshape("layers.0.self_attn.q_proj.frod_lambda_l", (48,))
    check("wide", "incompatible_base", "shape_mismatch", llama, tensors=wide)

    def float_indices(t: Tensors) -> Tensors:
        name = next(k for k in t if k.endswith(idx))
        t[name] = t[name].astype(np.float32)
        return t

    check("float_idx", "inconsistent_adapter", "dtype_mismatch", tensors=float_indices)
