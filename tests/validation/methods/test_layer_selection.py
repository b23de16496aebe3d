"""``layers_to_transform`` on a model whose module paths hold two indices (T5's
``block.<i>.layer.<j>``): peft 0.21 reads the layer from the first, earlier releases from the
last; a real adapter of either validates, a module neither would select is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import peft
import pytest
import torch
import transformers

from tests.validation.methods.method_builders import (
    Tensors,
    assert_error,
    invalid_dir,
    validate_dir,
    variant,
)

T5: dict[str, Any] = {
    "vocab_size": 128,
    "d_model": 32,
    "d_kv": 8,
    "d_ff": 64,
    "num_layers": 2,
    "num_decoder_layers": 2,
    "num_heads": 4,
    "decoder_start_token_id": 0,
}


@pytest.fixture(scope="module")
def t5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("t5") / "base"
    transformers.T5ForConditionalGeneration(transformers.T5Config(**T5)).save_pretrained(out)
    return out


def _adapter(base: Path, out: Path, **config: Any) -> Path:
    model = transformers.T5ForConditionalGeneration.from_pretrained(base)
    lora = peft.LoraConfig(r=2, task_type="SEQ_2_SEQ_LM", target_modules=["q", "v"], **config)
    peft.get_peft_model(model, lora).save_pretrained(str(out))
    return out


def test_peft_selects_by_the_block_index_and_it_validates(t5: Path, tmp_path: Path) -> None:
    adapter = _adapter(t5, tmp_path / "a", layers_to_transform=[1])
    report = validate_dir(adapter, t5)
    # block 1 of each stack, whichever sub-layer (0: self-attention, 1: cross-attention)
    assert report.target_modules == [
        "decoder.block.1.layer.0.SelfAttention.q",
        "decoder.block.1.layer.0.SelfAttention.v",
        "decoder.block.1.layer.1.EncDecAttention.q",
        "decoder.block.1.layer.1.EncDecAttention.v",
        "encoder.block.1.layer.0.SelfAttention.q",
        "encoder.block.1.layer.0.SelfAttention.v",
    ]
    assert validate_dir(adapter, None).target_modules == report.target_modules


def _keep(selected: str) -> Any:
    def edit(t: Tensors) -> Tensors:
        return {name: value for name, value in t.items() if selected in name}

    return edit


def test_an_adapter_selected_by_the_last_index_validates_too(t5: Path, tmp_path: Path) -> None:
    # What peft before 0.21 saved for layers_to_transform=[1]: the modules whose last index is 1
    # (the decoder's cross-attention of every block); made from a real adapter of every block.
    every = _adapter(t5, tmp_path / "every")
    earlier = variant(
        every,
        tmp_path / "earlier",
        tensors=_keep(".layer.1.EncDecAttention."),
        config=lambda c: {**c, "layers_to_transform": [1]},
    )
    report = validate_dir(earlier, t5)
    assert report.target_modules == [
        f"decoder.block.{b}.layer.1.EncDecAttention.{m}" for b in (0, 1) for m in ("q", "v")
    ]
    # block 0's self-attention: index 0 by either reading, not selected
    neither = variant(
        every,
        tmp_path / "neither",
        tensors=_keep("block.0.layer.0."),
        config=lambda c: {**c, "layers_to_transform": [1]},
    )
    assert_error(invalid_dir(neither, t5), "inconsistent_adapter", "unexpected_tensor")
