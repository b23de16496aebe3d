"""LoRA with ``trainable_token_indices``: peft trains those embedding rows in full and saves them
as ``<embedding>.token_adapter.trainable_tokens_delta`` ``[len(indices), dim]`` (real adapters of
the tiny Llama and GPT-2, its embedding tied to the lm_head)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import peft
import pytest

from registry.validation.config import config_from_dict
from registry.validation.layout import TokenRows
from tests.maths.tiny import save_adapter
from tests.validation.methods.method_builders import (
    assert_error,
    build,
    invalid_dir,
    reshape,
    set_key,
    validate_dir,
    variant,
)

DELTA = "token_adapter.trainable_tokens_delta"


@pytest.mark.parametrize(
    ("base", "indices", "target"),
    [
        ("llama", [1, 5, 9], "q_proj"),
        ("llama", {"embed_tokens": [2, 3]}, "q_proj"),
        ("gpt2", [4, 7], "c_attn"),
    ],
)
def test_the_token_rows_validate(
    base: str, indices: Any, target: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    base_dir: Path = request.getfixturevalue(base)
    config = peft.LoraConfig(r=2, target_modules=[target], trainable_token_indices=indices)
    counted: list[int] = []
    adapter = save_adapter(
        base_dir,
        config,
        tmp_path / "a",
        before_save=lambda model: counted.append(model.get_nb_trainable_parameters()[0]),
    )
    report = validate_dir(adapter, base_dir)
    assert report.checked_against_base
    assert report.trainable_params == counted[0]  # peft's own count: the rows counted once
    assert validate_dir(adapter, None).tensor_count == report.tensor_count


@pytest.fixture
def adapter(llama: Path, tmp_path: Path) -> Path:
    config = peft.LoraConfig(r=2, target_modules=["q_proj"], trainable_token_indices=[1, 5])
    return build(llama, config, tmp_path / "a")


def test_broken_token_rows(adapter: Path, llama: Path, tmp_path: Path) -> None:
    past = variant(adapter, tmp_path / "past", config=set_key("trainable_token_indices", [1, 128]))
    assert validate_dir(past, None).peft_type == "LORA"  # the vocabulary is the base's
    assert_error(invalid_dir(past, llama), "incompatible_base", "index_out_of_range")
    fewer = variant(adapter, tmp_path / "fewer", config=set_key("trainable_token_indices", [1]))
    assert_error(invalid_dir(fewer, None), "inconsistent_adapter", "shape_mismatch")
    wide = variant(adapter, tmp_path / "wide", tensors=reshape(DELTA, (2, 16)))
    assert_error(invalid_dir(wide, llama), "incompatible_base", "shape_mismatch")
    other = variant(
        adapter, tmp_path / "other", config=set_key("trainable_token_indices", {"lm_head": [1, 5]})
    )
    assert_error(invalid_dir(other, None), "inconsistent_adapter", "unexpected_tensor")
    unset = variant(adapter, tmp_path / "unset", config=set_key("trainable_token_indices", None))
    assert_error(invalid_dir(unset, None), "inconsistent_adapter", "unexpected_tensor")
    negative = variant(
        adapter, tmp_path / "neg", config=set_key("trainable_token_indices", [-1, 5])
    )
    assert_error(invalid_dir(negative, None), "invalid_adapter_config", "schema")


def test_token_rows_by_module_name() -> None:
    # An object of names: a name matches the module path or its dotted end; the first the
    # config lists wins; a plain list goes to the input embedding only.
    named = config_from_dict(
        {
            "peft_type": "LORA",
            "trainable_token_indices": {"embed_tokens": [1], "model.embed_tokens": [2], "x": [3]},
        }
    )
    rows = TokenRows(named)
    assert rows.of("model.embed_tokens") == (1,)
    assert rows.of("embed_tokens") == (1,)
    assert rows.of("model.my_embed_tokens") is None  # a dotted end, not a string end
    assert rows.of("a.x") == (3,)
    assert rows.of("lm_head") is None
    plain = TokenRows(config_from_dict({"peft_type": "LORA", "trainable_token_indices": [4]}))
    assert (plain.of("transformer.wte"), plain.of("lm_head")) == ((4,), None)
    many = {f"m{i}": [i] for i in range(30_000)}  # a config naming many modules
    lookup = TokenRows(config_from_dict({"peft_type": "LORA", "trainable_token_indices": many}))
    assert [lookup.of(f"model.layers.{i}.m{i}") for i in (0, 29_999)] == [(0,), (29_999,)]
