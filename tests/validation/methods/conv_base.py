"""A tiny ViT (its patch embedding is a Conv2d 3 -> 32, kernel 4x4: fan_in 48) and peft adapters
on it, built in the test (nothing downloaded) for the methods that support Conv2d."""

from __future__ import annotations

from pathlib import Path

import peft
import torch
import transformers

#: The Conv2d the adapters target.
PATCH = "projection"


def tiny_vit(out: Path) -> Path:
    torch.manual_seed(0)
    config = transformers.ViTConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=64,
        image_size=16,
        patch_size=4,
        num_channels=3,
    )
    transformers.ViTModel(config).save_pretrained(out, safe_serialization=True)
    return out


def save_conv_adapter(base_dir: Path, config: peft.PeftConfig, out: Path) -> Path:
    """peft wraps the ViT with ``config``, perturbs the trainable parameters, saves them."""
    model = peft.get_peft_model(transformers.ViTModel.from_pretrained(base_dir), config)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _, param in sorted(model.named_parameters()):
            if param.requires_grad:
                param.add_(torch.randn(param.shape, generator=generator) * 0.1)
    model.save_pretrained(str(out))
    return out
