"""LoRA adapters of the shared tiny gpt2 base, made from small random tensors."""

from __future__ import annotations

import json
from pathlib import Path

from registry.maths.lora import save_lora
from tests.fixtures.peft import PEFT_FIXTURES

GPT2_LORA = PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn"
MODULES = ("transformer.h.0.attn.c_attn", "transformer.h.1.attn.c_attn")


def lora_dir(target: Path, *, rank: int, seed: int) -> Path:
    """A LoRA of the tiny gpt2 (``c_attn`` of both layers, rank ``rank``) from random tensors."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    config = json.loads((GPT2_LORA / "adapter_config.json").read_text())
    config |= {"r": rank, "lora_alpha": 2 * rank}
    modules = {
        name: (
            "linear",
            torch.randn(rank, 64, generator=generator) * 0.1,
            torch.randn(192, rank, generator=generator) * 0.1,
        )
        for name in MODULES
    }
    save_lora(target, config, modules)
    return target
