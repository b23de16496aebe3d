"""TINYLORA: real peft adapters validate; broken variants fail with their exact code and reason."""

from __future__ import annotations

from pathlib import Path

import peft
import pytest

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

TARGETS = ["q_proj", "k_proj"]


@pytest.fixture(scope="module")
def tinylora(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # r=20 > k_proj's 16 outputs: peft truncates that module's SVD rank to 16.
    config = peft.TinyLoraConfig(r=20, u=5, weight_tying=0.5, target_modules=TARGETS)
    return build(llama, config, tmp_path_factory.mktemp("tinylora") / "a")


def test_tinylora_validates(tinylora: Path, llama: Path) -> None:
    assert_valid_with_and_without_base(tinylora, llama, "TINYLORA")
    report = validate_dir(tinylora, llama)
    assert len(report.target_modules) == 4
    # A/B/P per module (q: rank 20, k: rank 16) are buffers; round(4 * 0.5) = 2 shared vectors
    # of u = 5 are all peft trains.
    assert report.tensor_count == 4 * 3 + 2
    assert report.trainable_params == 2 * 5


@pytest.mark.parametrize(
    ("tying", "groups"), [(0.0, 4), (0.25, 3), (0.625, 2), (0.875, 1), (1.0, 1)]
)
def test_tinylora_one_vector_per_weight_tying_group(
    llama: Path, tmp_path: Path, tying: float, groups: int
) -> None:
    config = peft.TinyLoraConfig(
        u=3, weight_tying=tying, save_projection=False, target_modules=TARGETS
    )
    adapter = build(llama, config, tmp_path / "a")
    report = validate_dir(adapter, llama)
    assert report.tensor_count == 8 + groups  # A and B per module; no P without save_projection
    assert validate_dir(adapter, None).tensor_count == report.tensor_count


def test_tinylora_on_gpt2_conv1d_and_embedding(gpt2: Path, tmp_path: Path) -> None:
    config = peft.TinyLoraConfig(u=4, target_modules=["c_attn", "wte"])
    adapter = build(gpt2, config, tmp_path / "a")
    assert_valid_with_and_without_base(adapter, gpt2, "TINYLORA")


def test_tinylora_broken_variants(tinylora: Path, llama: Path, tmp_path: Path) -> None:
    def check(name: str, code: str, reason: str, base: Path | None = None, **edits: object) -> None:
        broken = variant(tinylora, tmp_path / name, **edits)  # type: ignore[arg-type]
        assert_error(invalid_dir(broken, base), code, reason)

    # k_proj's rank is min(20, 32, 16) = 16: a rank-20 SVD cannot come from its base.
    check("k_rank", "inconsistent_adapter", "shape_mismatch", tensors=_rank_k(20))
    check("k_rank_base", "incompatible_base", "shape_mismatch", llama, tensors=_rank_k(12))
    check("u", "inconsistent_adapter", "shape_mismatch", config=set_key("u", 6))
    check("v", "inconsistent_adapter", "shape_mismatch", tensors=reshape("tinylora_v.1", (4,)))
    check(
        "p",
        "inconsistent_adapter",
        "shape_mismatch",
        tensors=reshape("q_proj.tinylora_P", (5, 20, 19)),
    )
    check("no_v", "inconsistent_adapter", "missing_tensor", tensors=drop("tinylora_v.1"))
    check("no_b", "inconsistent_adapter", "missing_tensor", tensors=drop("q_proj.tinylora_B"))
    check("no_p", "inconsistent_adapter", "missing_tensor", tensors=drop("k_proj.tinylora_P"))
    # Four modules at weight_tying 0.5 make two groups: a third vector (or 0.0's four) is wrong.
    check(
        "v2",
        "inconsistent_adapter",
        "unexpected_tensor",
        tensors=add("base_model.tinylora_v.2", (5,)),
    )
    check("tying", "inconsistent_adapter", "missing_tensor", config=set_key("weight_tying", 0.0))
    check(
        "p_off",
        "inconsistent_adapter",
        "unexpected_tensor",
        config=set_key("save_projection", False),
    )
    check("tying_str", "invalid_adapter_config", "schema", config=set_key("weight_tying", "0.5"))
    check("tying_neg", "invalid_adapter_config", "schema", config=set_key("weight_tying", -0.5))
    check("u_float", "invalid_adapter_config", "schema", config=set_key("u", 5.0))


def _rank_k(rank: int) -> object:
    def edit(t: Tensors) -> Tensors:
        for part, shape in (("A", (rank, 32)), ("B", (16, rank)), ("P", (5, rank, rank))):
            t = reshape(f"layers.0.self_attn.k_proj.tinylora_{part}", shape)(t)
        return t

    return edit
