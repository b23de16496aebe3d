"""Compare a checkpoint the maths wrote with peft's own result, tensor by tensor.

float32 tensors must be within ``1e-6 * max|W|`` of peft's, bfloat16/float16 within one unit in
the last place; a tensor peft leaves equal to the base must be byte-identical in the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from tests.maths.tiny import load_base, logits, raw_tensor_bytes


def weight_files(checkpoint: Path) -> list[str]:
    index = checkpoint / "model.safetensors.index.json"
    if index.is_file():
        return sorted(set(json.loads(index.read_text())["weight_map"].values()))
    return ["model.safetensors"]


def ulp_distance(a: torch.Tensor, b: torch.Tensor) -> int:
    """Largest distance in representable steps between two 16-bit float tensors."""

    def ordered(t: torch.Tensor) -> torch.Tensor:
        bits = t.contiguous().view(torch.int16).to(torch.int32)
        return torch.where(bits >= 0, bits, -(bits + 32768))

    return int((ordered(a) - ordered(b)).abs().max().item()) if a.numel() else 0


def assert_close_to(name: str, got: torch.Tensor, want: torch.Tensor) -> None:
    assert got.dtype == want.dtype, (name, got.dtype, want.dtype)
    assert got.shape == want.shape, (name, got.shape, want.shape)
    if got.dtype == torch.float32:
        bound = 1e-6 * float(want.abs().max())
        assert float((got - want).abs().max()) <= bound, name
    else:
        assert ulp_distance(got, want) <= 1, name


def assert_matches_peft(
    out_dir: Path,
    base_dir: Path,
    merged: Any,
    *,
    dtype: torch.dtype | None = None,
) -> set[str]:
    """Check every tensor of ``out_dir`` against peft's merged model (cast to ``dtype`` when
    given); return the names of the tensors peft changed."""
    expected = {k: v.detach() for k, v in merged.state_dict().items()}
    changed: set[str] = set()
    files = weight_files(base_dir)
    assert weight_files(out_dir) == files
    for file in files:
        got_all = load_file(out_dir / file)
        base_all = load_file(base_dir / file)
        assert set(base_all) <= set(got_all)
        for name, got in got_all.items():
            want = expected[name] if dtype is None else expected[name].to(dtype)
            assert_close_to(name, got, want)
            base = base_all.get(name)
            if base is not None and torch.equal(expected[name], base):
                if dtype is None or dtype == base.dtype:
                    assert raw_tensor_bytes(out_dir / file, name) == raw_tensor_bytes(
                        base_dir / file, name
                    ), name
            else:
                changed.add(name)
    return changed


def assert_same_logits(out_dir: Path, merged: Any) -> None:
    """The merged checkpoint loads with transformers and computes peft's logits."""
    reloaded = load_base(out_dir)
    diff = (logits(reloaded) - logits(merged)).abs().max()
    assert float(diff) <= 1e-5
