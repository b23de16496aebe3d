"""A registry-native SPARSE_DELTA adapter built from a base's own weights (docs/formats.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

PREFIX = "base_model.model."


def build_sparse_delta(
    base_dir: Path, out: Path, modules: tuple[str, ...], seed: int = 0, dtype: str = "<i8"
) -> Path:
    """A sparse fine-tune of ``base_dir``: 5% of each module's weights moved, saved as the
    documented format (flat row-major int64 indices, strictly increasing, and F32 values)."""
    base = load_file(base_dir / "model.safetensors")
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    for module in modules:
        weight = base[module + ".weight"]
        count = max(1, weight.size // 20)
        indices = np.sort(rng.choice(weight.size, size=count, replace=False)).astype(dtype)
        tuned = weight.reshape(-1).copy()
        tuned[indices] += rng.normal(0.0, 0.01, size=count).astype(weight.dtype)
        tensors[f"{PREFIX}{module}.sparse_indices"] = indices
        tensors[f"{PREFIX}{module}.sparse_values"] = tuned[indices] - weight.reshape(-1)[indices]
    out.mkdir(parents=True)
    save_file(tensors, out / "adapter_model.safetensors")
    config = {
        "peft_type": "SPARSE_DELTA",
        "base_model_name_or_path": str(base_dir),
        "target_modules": [m.rsplit(".", 1)[-1] for m in modules],
    }
    (out / "adapter_config.json").write_text(json.dumps(config))
    return out
