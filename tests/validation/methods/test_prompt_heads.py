"""Prompt learning on a classification task: peft saves the task head (``modules_to_save``) in
full beside ``prompt_embeddings``, as ``base_model.classifier.*`` (real adapters of a tiny BERT)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import peft
import pytest
import torch
import transformers

from tests.validation.methods.method_builders import (
    add,
    assert_error,
    invalid_dir,
    reshape,
    set_key,
    validate_dir,
    variant,
)

BERT: dict[str, Any] = {
    "vocab_size": 128,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
    "num_labels": 3,
}
KW: dict[str, Any] = {"task_type": "SEQ_CLS", "num_virtual_tokens": 5}
CONFIGS: dict[str, Callable[[], peft.PeftConfig]] = {
    "prompt": lambda: peft.PromptTuningConfig(**KW),
    "p-tuning": lambda: peft.PromptEncoderConfig(encoder_hidden_size=16, **KW),
    "prefix": lambda: peft.PrefixTuningConfig(**KW),
}


@pytest.fixture(scope="module")
def bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("bert") / "base"
    model = transformers.BertForSequenceClassification(transformers.BertConfig(**BERT))
    model.save_pretrained(out)
    return out


def _adapter(base: Path, config: peft.PeftConfig, out: Path) -> Path:
    model = transformers.BertForSequenceClassification.from_pretrained(base)
    peft.get_peft_model(model, config).save_pretrained(str(out))
    return out


@pytest.mark.parametrize("method", sorted(CONFIGS))
def test_the_saved_head_validates_against_the_base(method: str, bert: Path, tmp_path: Path) -> None:
    adapter = _adapter(bert, CONFIGS[method](), tmp_path / "a")
    report = validate_dir(adapter, bert)
    assert report.checked_against_base
    # prompt_embeddings and the head's weight and bias, all trained
    assert report.tensor_count == 3
    assert validate_dir(adapter, None).tensor_count == 3


def test_a_wrong_head_or_a_stray_tensor_is_refused(bert: Path, tmp_path: Path) -> None:
    adapter = _adapter(bert, CONFIGS["prompt"](), tmp_path / "a")
    wide = variant(adapter, tmp_path / "wide", tensors=reshape("classifier.weight", (4, 32)))
    assert validate_dir(wide, None).tensor_count == 3  # alone, nothing to compare it with
    assert_error(invalid_dir(wide, bert), "incompatible_base", "shape_mismatch")
    stray = variant(adapter, tmp_path / "stray", tensors=add("base_model.pooler.dense.bias", (32,)))
    assert_error(invalid_dir(stray, None), "inconsistent_adapter", "unexpected_tensor")
    unsaved = variant(adapter, tmp_path / "unsaved", config=set_key("modules_to_save", None))
    assert_error(invalid_dir(unsaved, None), "inconsistent_adapter", "unexpected_tensor")
