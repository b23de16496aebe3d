"""Tiny transformers models and peft adapters built in the test, for the maths tests.

Nothing is downloaded: models come from small configs with seeded random weights and are saved
with ``save_pretrained`` (safetensors). Adapters get non-zero deltas: every trainable parameter
of the peft model is perturbed with seeded noise (simulated training) before it is saved.

``raw_tensor_bytes`` reads a tensor's bytes straight from a safetensors file with code of its
own (not the registry's reader), so byte-identity checks do not trust the code under test.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import peft
import torch
import transformers

LLAMA: dict[str, Any] = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 128,
    "max_position_embeddings": 64,
}
GPT2: dict[str, Any] = {
    "n_embd": 32,
    "n_layer": 2,
    "n_head": 4,
    "vocab_size": 128,
    "n_positions": 64,
}


def _save(model: Any, out: Path, dtype: torch.dtype, shard: str | None) -> Path:
    with torch.no_grad():  # transformers starts biases at zero, which would hide bias maths
        for name, param in model.named_parameters():
            if name.endswith(".bias"):
                param.normal_(0.0, 0.02)
    model = model.to(dtype)
    kwargs: dict[str, Any] = {"safe_serialization": True}
    if shard is not None:
        kwargs["max_shard_size"] = shard
    model.save_pretrained(out, **kwargs)
    return out


def tiny_llama(
    tmp_path: Path,
    seed: int = 0,
    *,
    dtype: torch.dtype = torch.float32,
    max_shard_size: str | None = None,
    name: str = "llama",
    **overrides: Any,
) -> Path:
    """Save a tiny Llama (hidden 32, 2 layers, GQA 4/2 heads, vocab 128) and return its dir."""
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(**{**LLAMA, **overrides})
    return _save(transformers.LlamaForCausalLM(config), tmp_path / name, dtype, max_shard_size)


def tiny_gpt2(
    tmp_path: Path,
    seed: int = 0,
    *,
    dtype: torch.dtype = torch.float32,
    max_shard_size: str | None = None,
    name: str = "gpt2",
) -> Path:
    """Save a tiny GPT-2 (Conv1D layers, tied lm_head) and return its dir."""
    torch.manual_seed(seed)
    config = transformers.GPT2Config(**GPT2, bos_token_id=0, eos_token_id=0)
    return _save(transformers.GPT2LMHeadModel(config), tmp_path / name, dtype, max_shard_size)


def load_base(base_dir: Path) -> Any:
    """The saved model, loaded by transformers as a user would (eval mode)."""
    model: Any = transformers.AutoModelForCausalLM.from_pretrained(base_dir)
    return model.eval()


def save_adapter(
    base_dir: Path,
    config: peft.PeftConfig,
    out_dir: Path,
    seed: int = 0,
    *,
    before_save: Any = None,
) -> Path:
    """Wrap the base with ``config``, perturb every trainable parameter with seeded noise and
    save the adapter into ``out_dir``; ``before_save(peft_model)`` may adjust it first."""
    model = peft.get_peft_model(load_base(base_dir), config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, param in sorted(model.named_parameters()):
            if param.requires_grad:
                noise = torch.randn(param.shape, generator=generator, dtype=torch.float32)
                param.add_((noise * 0.1).to(param.dtype))
    if before_save is not None:
        before_save(model)
    model.save_pretrained(str(out_dir))
    return out_dir


def peft_merged(base_dir: Path, adapter_dir: Path) -> Any:
    """peft's own answer: the adapter loaded from disk onto the base, ``merge_and_unload``."""
    model = peft.PeftModel.from_pretrained(load_base(base_dir), adapter_dir)
    return model.merge_and_unload().eval()


def raw_tensor_bytes(path: Path, name: str) -> bytes:
    """The bytes of one tensor's data, read with a parser independent of the registry's."""
    with path.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        begin, end = header[name]["data_offsets"]
        f.seek(8 + length + begin)
        return f.read(end - begin)


def header_of(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header: dict[str, Any] = json.loads(f.read(length))
        return header


def logits(model: Any, seed: int = 0) -> torch.Tensor:
    ids = torch.randint(0, 128, (2, 12), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        out: torch.Tensor = model(input_ids=ids).logits
    return out


def peft_type_name(config: peft.PeftConfig) -> str:
    """The config's method as ``adapter_config.json`` spells it (``"LORA"``, ...)."""
    peft_type: Any = config.peft_type
    return str(peft_type.value)
