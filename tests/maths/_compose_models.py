"""Tiny peft models for the compose tests: a Llama-like base (hidden 32, 2 layers) or a GPT-2
(Conv1D, ``fan_in_fan_out``), LoRA adapters with non-zero deltas, saved as peft saves them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from registry.maths.lora import LoraModule, load_lora


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=128,
    )
    return LlamaForCausalLM(config)


def tiny_gpt2(seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=64))


def lora(r: int = 4, alpha: int = 8, **kwargs: Any) -> LoraConfig:
    """A LoRA config whose B is not zero at init (``init_lora_weights=False``)."""
    kwargs.setdefault("target_modules", ["q_proj", "v_proj"])
    return LoraConfig(r=r, lora_alpha=alpha, init_lora_weights=False, **kwargs)


def with_adapters(base: Any, configs: dict[str, LoraConfig], seed: int = 1) -> Any:
    """``base`` wrapped with one adapter per ``configs`` entry, in order, seeded."""
    torch.manual_seed(seed)
    names = list(configs)
    model = get_peft_model(base, configs[names[0]], adapter_name=names[0])
    for name in names[1:]:
        model.add_adapter(name, configs[name])
    return model


def save_adapters(model: PeftModel, root: Path) -> dict[str, Path]:
    """Save every adapter of ``model`` as its own directory; returns name → directory."""
    paths: dict[str, Path] = {}
    for name in list(model.peft_config):
        model.save_pretrained(str(root / "peft"), selected_adapters=[name])
        paths[name] = root / "peft" / name if name != "default" else root / "peft"
    return paths


def factors(model: Any, name: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The adapter ``name``'s ``(A, B)`` per module, as they sit in the model."""
    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for path, module in model.base_model.model.named_modules():
        lora_a = getattr(module, "lora_A", None)
        if lora_a is not None and name in lora_a:
            out[path] = (lora_a[name].weight.detach(), module.lora_B[name].weight.detach())
        embedding_a = getattr(module, "lora_embedding_A", None)
        if embedding_a is not None and name in embedding_a:
            out[path] = (embedding_a[name].detach(), module.lora_embedding_B[name].detach())
    return out


def products(path: Path) -> dict[str, torch.Tensor]:
    """A saved adapter's ``B @ A`` per module, without its scaling."""
    return {n: m.b @ m.a for n, m in load_lora(path).modules.items()}


def deltas(path: Path) -> dict[str, torch.Tensor]:
    """A saved adapter's deltas ``scaling · B @ A`` per module (its config's scaling)."""
    return {n: m.delta() for n, m in load_lora(path).modules.items()}


def modules_of(path: Path) -> dict[str, LoraModule]:
    return load_lora(path).modules


def write_adapter(
    path: Path,
    config: dict[str, Any] | None = None,
    *,
    modules: dict[str, tuple[int, int, int]] | None = None,
    extra: dict[str, torch.Tensor] | None = None,
    seed: int = 0,
) -> Path:
    """A hand-made LoRA adapter directory: ``modules`` maps a module path to ``(r, in, out)``
    (default: q_proj and v_proj of layer 0, rank 4), factors random from ``seed``."""
    cfg: dict[str, Any] = {
        "peft_type": "LORA",
        "r": 4,
        "lora_alpha": 8,
        "target_modules": ["q_proj", "v_proj"],
        "base_model_name_or_path": "tiny/llama",
    } | (config or {})
    shapes = modules or {
        "model.layers.0.self_attn.q_proj": (4, 32, 32),
        "model.layers.0.self_attn.v_proj": (4, 32, 16),
    }
    gen = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = dict(extra or {})
    for name, (r, fan_in, fan_out) in shapes.items():
        prefix = f"base_model.model.{name}"
        tensors[f"{prefix}.lora_A.weight"] = torch.randn(r, fan_in, generator=gen)
        tensors[f"{prefix}.lora_B.weight"] = torch.randn(fan_out, r, generator=gen)
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text(json.dumps(cfg))
    save_file(tensors, str(path / "adapter_model.safetensors"))
    return path


def visits(model: Any, adapters: list[str]) -> list[tuple[str, int]]:
    """The modules peft's ``add_weighted_adapter`` visits, in its order, with how many of
    ``adapters`` each carries."""
    out: list[tuple[str, int]] = []
    for path, module in model.base_model.model.named_modules():
        held = [
            n
            for n in adapters
            if n in getattr(module, "lora_A", {}) or n in getattr(module, "lora_embedding_A", {})
        ]
        if held:
            out.append((path, len(held)))
    return out
