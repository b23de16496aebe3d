"""ADAMSS: real peft adapters validate; broken variants fail with their exact code and reason."""

from __future__ import annotations

from pathlib import Path

import peft
import pytest

from tests.maths.tiny import tiny_llama
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

K0 = "base_model.model.model.layers.0.self_attn.k_proj"


@pytest.fixture(scope="module")
def adamss(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.AdamssConfig(
        r=8, num_subspaces=3, subspace_rank=2, target_modules=["q_proj", "k_proj"]
    )
    return build(llama, config, tmp_path_factory.mktemp("adamss") / "a")


def test_adamss_validates(adamss: Path, llama: Path) -> None:
    assert_valid_with_and_without_base(adamss, llama, "ADAMSS")
    report = validate_dir(adamss, llama)
    assert len(report.target_modules) == 4
    assert report.tensor_count == 4 * (1 + 2 * 3)


def test_adamss_bias_column_and_dynamic_rank(tmp_path: Path) -> None:
    # With a bias peft decomposes [W | b]: adamss_newB is [min(r, out, in + 1), in + 1].
    base = tiny_llama(tmp_path, attention_bias=True, name="biased")
    config = peft.AdamssConfig(r=64, num_subspaces=4, subspace_rank=3, target_modules=["k_proj"])
    adapter = build(base, config, tmp_path / "a")
    assert_valid_with_and_without_base(adapter, base, "ADAMSS")
    dynamic = peft.AdamssConfig(
        r=4, num_subspaces=2, use_dynamic_rank=True, subspace_rank=4, target_modules=["v_proj"]
    )
    assert_valid_with_and_without_base(build(base, dynamic, tmp_path / "d"), base, "ADAMSS")


def test_adamss_broken_variants(adamss: Path, llama: Path, tmp_path: Path) -> None:
    def check(name: str, code: str, reason: str, base: Path | None = None, **edits: object) -> None:
        broken = variant(adamss, tmp_path / name, **edits)  # type: ignore[arg-type]
        assert_error(invalid_dir(broken, base), code, reason)

    check("no_b", "inconsistent_adapter", "missing_tensor", tensors=drop(f"{K0}.adamss_B.1"))
    check("no_new", "inconsistent_adapter", "missing_tensor", tensors=drop(f"{K0}.adamss_newB"))
    check("fewer", "inconsistent_adapter", "unexpected_tensor", config=set_key("num_subspaces", 2))
    check("more", "inconsistent_adapter", "missing_tensor", config=set_key("num_subspaces", 4))
    extra = add(f"{K0}.adamss_A.3", (2, 8))
    check("extra", "inconsistent_adapter", "unexpected_tensor", tensors=extra)
    check("rank", "inconsistent_adapter", "shape_mismatch", config=set_key("subspace_rank", 1))
    svd = reshape(f"{K0}.adamss_A.0", (2, 6))
    check("svd", "inconsistent_adapter", "shape_mismatch", tensors=svd)
    check("r", "incompatible_base", "shape_mismatch", llama, config=set_key("r", 6))
    check("sub_str", "invalid_adapter_config", "schema", config=set_key("num_subspaces", "3"))

    def more_rows(t: Tensors) -> Tensors:
        name = next(k for k in t if k.endswith(f"{K0}.adamss_B.0"))
        rows, k = t[name].shape
        return reshape(name, (rows + 4, k))(t)

    check("rows", "incompatible_base", "shape_mismatch", llama, tensors=more_rows)
    assert validate_dir(variant(adamss, tmp_path / "rows_alone", tensors=more_rows), None)
