"""BITFIT (registry-native bias deltas): a real delta - the bias change of a tiny GPT-2 tuned
bias-only for one step - validates against its base; each broken variant gives its code and
reason."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from tests.maths.tiny import load_base
from tests.validation.methods.method_builders import (
    add,
    assert_error,
    invalid_dir,
    reshape,
    set_key,
    validate_dir,
    variant,
)

C_ATTN = "base_model.model.transformer.h.0.attn.c_attn.bias"


def bitfit_adapter(base_dir: Path, out: Path, targets: tuple[str, ...]) -> Path:
    """Tune only the biases of the modules named in ``targets`` for one SGD step and save the
    differences to the base as a BITFIT adapter."""
    model = load_base(base_dir)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    tuned = [p for n, p in model.named_parameters() if n.endswith(".bias") and _hit(n, targets)]
    for param in model.parameters():
        param.requires_grad_(False)
    for param in tuned:
        param.requires_grad_(True)
    ids = torch.randint(
        0, model.config.vocab_size, (2, 8), generator=torch.Generator().manual_seed(0)
    )
    model.train()
    model(input_ids=ids, labels=ids).loss.backward()
    with torch.no_grad():
        for param in tuned:
            param.sub_(param.grad * 10.0)
    deltas = {
        f"base_model.model.{n}": (p.detach() - before[n]).contiguous()
        for n, p in model.named_parameters()
        if p.requires_grad
    }
    out.mkdir(parents=True)
    save_file(deltas, str(out / "adapter_model.safetensors"))
    config = {"peft_type": "BITFIT", "base_model_name_or_path": str(base_dir)}
    (out / "adapter_config.json").write_text(json.dumps(config))
    return out


def _hit(name: str, targets: tuple[str, ...]) -> bool:
    return name.removesuffix(".bias").split(".")[-1] in targets


@pytest.fixture(scope="module")
def bitfit(gpt2: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    targets = ("c_attn", "c_fc", "ln_1", "ln_f")
    return bitfit_adapter(gpt2, tmp_path_factory.mktemp("bitfit") / "a", targets)


def test_bitfit_validates_against_its_base(bitfit: Path, gpt2: Path) -> None:
    report = validate_dir(bitfit, gpt2)
    assert report.peft_type == "BITFIT"
    assert report.checked_against_base
    assert "transformer.ln_f" in report.target_modules
    assert len(report.target_modules) == 2 * 3 + 1
    assert validate_dir(bitfit, None).target_modules == report.target_modules


def test_bitfit_with_target_modules(bitfit: Path, gpt2: Path, tmp_path: Path) -> None:
    targets = set_key("target_modules", ["c_attn", "c_fc", "ln_1", "ln_f"])
    assert validate_dir(variant(bitfit, tmp_path / "t", config=targets), gpt2).checked_against_base
    narrow = variant(bitfit, tmp_path / "narrow", config=set_key("target_modules", ["c_attn"]))
    assert_error(invalid_dir(narrow, None), "inconsistent_adapter", "unexpected_tensor")


def test_bitfit_module_without_bias_in_base(llama: Path, tmp_path: Path) -> None:
    # tiny Llama's projections have no bias: a delta for one has nothing to be added to
    q = "base_model.model.model.layers.0.self_attn.q_proj.bias"
    out = tmp_path / "llama"
    out.mkdir()
    save_file({q: torch.full((32,), 0.5)}, str(out / "adapter_model.safetensors"))
    (out / "adapter_config.json").write_text(json.dumps({"peft_type": "BITFIT"}))
    assert validate_dir(out, None).peft_type == "BITFIT"
    assert_error(invalid_dir(out, llama), "incompatible_base", "missing_bias")


def test_bitfit_broken_variants(bitfit: Path, gpt2: Path, tmp_path: Path) -> None:
    wrong = variant(bitfit, tmp_path / "shape", tensors=reshape("c_attn.bias", (95,)))
    assert_error(invalid_dir(wrong, gpt2), "incompatible_base", "shape_mismatch")
    matrix = variant(bitfit, tmp_path / "matrix", tensors=reshape("c_attn.bias", (1, 96)))
    assert_error(invalid_dir(matrix, None), "inconsistent_adapter", "shape_mismatch")
    ints = variant(
        bitfit, tmp_path / "ints", tensors=lambda t: {**t, C_ATTN: t[C_ATTN].astype(np.int32)}
    )
    assert_error(invalid_dir(ints, None), "inconsistent_adapter", "dtype_mismatch")
    name = "base_model.model.transformer.h.0.attn.c_attn.weight"
    extra = variant(bitfit, tmp_path / "extra", tensors=add(name, (32, 96)))
    assert_error(invalid_dir(extra, None), "inconsistent_adapter", "unexpected_tensor")
    ghost = variant(bitfit, tmp_path / "ghost", tensors=add("base_model.model.nope.bias", (32,)))
    assert_error(invalid_dir(ghost, gpt2), "incompatible_base", "missing_modules")
