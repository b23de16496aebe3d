"""Write the README walk-through's example base model and adapters into examples/.

    python examples/make_examples.py             # rewrite bases/, adapters/, broken/ in place
    python examples/make_examples.py --out DIR   # write them under DIR instead

No downloads and no torch: numpy and safetensors (both dependencies of the registry) and the
standard library. The output is byte-identical on every run and platform: every value comes from
``random.Random(seed).random()`` (whose sequence Python guarantees across versions) through
correctly rounded IEEE arithmetic, and the files are written the way peft 0.21.2 /
transformers 5.23.0 write them (safetensors with ``__metadata__ = {"format": "pt"}``;
``adapter_config.json`` with peft's full key set, sorted, indent 2, no final newline;
``config.json`` sorted, indent 2, final newline; peft's model-card front matter). The weights
are random, not trained: they exercise the registry, not a language model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import shutil
import struct
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save

HERE = Path(__file__).resolve().parent
# Generated folders (examples/README.md and this script are written by hand).
OUTPUTS = ("bases", "adapters", "broken")
SEED = 20261205
PEFT_VERSION = "0.21.2"
TRANSFORMERS_VERSION = "5.23.0"
# The name the walk-through registers the base under; adapters name it as their base.
BASE_NAME = "peft-fixtures/tiny-llama"

# A Llama-architecture model small enough to commit: 2 layers, hidden 32, grouped-query
# attention (4 query heads, 2 key/value heads of 8), vocabulary 128.
HIDDEN, INTERMEDIATE, LAYERS, HEADS, KV_HEADS, HEAD_DIM, VOCAB = 32, 64, 2, 4, 2, 8, 128
MODULE_SHAPES = {  # module -> (out, in), as nn.Linear stores its weight
    "self_attn.q_proj": (HEADS * HEAD_DIM, HIDDEN),
    "self_attn.k_proj": (KV_HEADS * HEAD_DIM, HIDDEN),
    "self_attn.v_proj": (KV_HEADS * HEAD_DIM, HIDDEN),
    "self_attn.o_proj": (HIDDEN, HEADS * HEAD_DIM),
    "mlp.gate_proj": (INTERMEDIATE, HIDDEN),
    "mlp.up_proj": (INTERMEDIATE, HIDDEN),
    "mlp.down_proj": (HIDDEN, INTERMEDIATE),
}

Tensors = dict[str, np.ndarray[Any, np.dtype[np.float32]]]


def uniform(name: str, shape: tuple[int, ...], bound: float) -> np.ndarray[Any, Any]:
    """Values in [-bound, bound) from a generator seeded by the tensor's name, as float32."""
    digest = hashlib.sha256(f"{SEED}/{name}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    count = math.prod(shape)
    values = [(2.0 * rng.random() - 1.0) * bound for _ in range(count)]
    packed = struct.pack(f"<{count}f", *values)  # float32, little-endian, round to nearest
    return np.frombuffer(packed, dtype="<f4").reshape(shape).copy()


def base_tensors() -> Tensors:
    """transformers' LlamaForCausalLM state dict (init std 0.02: uniform of the same spread)."""
    spread = 0.02 * math.sqrt(3.0)
    tensors: Tensors = {
        "model.embed_tokens.weight": uniform("embed_tokens", (VOCAB, HIDDEN), spread),
        "lm_head.weight": uniform("lm_head", (VOCAB, HIDDEN), spread),
        "model.norm.weight": np.ones(HIDDEN, dtype="<f4"),
    }
    for layer in range(LAYERS):
        prefix = f"model.layers.{layer}"
        for norm in ("input_layernorm", "post_attention_layernorm"):
            tensors[f"{prefix}.{norm}.weight"] = np.ones(HIDDEN, dtype="<f4")
        for module, shape in MODULE_SHAPES.items():
            name = f"{prefix}.{module}.weight"
            tensors[name] = uniform(name, shape, spread)
    return tensors


def base_config() -> dict[str, Any]:
    return {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 0,
        "dtype": "float32",
        "eos_token_id": 0,
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "hidden_size": HIDDEN,
        "initializer_range": 0.02,
        "intermediate_size": INTERMEDIATE,
        "max_position_embeddings": 128,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": HEADS,
        "num_hidden_layers": LAYERS,
        "num_key_value_heads": KV_HEADS,
        "pad_token_id": None,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-06,
        "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"},
        "tie_word_embeddings": False,
        "transformers_version": TRANSFORMERS_VERSION,
        "use_cache": True,
        "vocab_size": VOCAB,
    }


GENERATION_CONFIG = {
    "_from_model_config": True,
    "bos_token_id": 0,
    "eos_token_id": 0,
    "output_attentions": False,
    "output_hidden_states": False,
    "transformers_version": TRANSFORMERS_VERSION,
    "use_cache": True,
}


def lora_config(targets: list[str], r: int, alpha: int, **overrides: Any) -> dict[str, Any]:
    """peft 0.21.2's LoraConfig.to_dict() after save_pretrained (every key it writes)."""
    config: dict[str, Any] = {
        "alora_invocation_tokens": None,
        "alpha_pattern": {},
        "arrow_config": None,
        "auto_mapping": None,
        "base_model_name_or_path": BASE_NAME,
        "bias": "none",
        "corda_config": None,
        "ensure_weight_tying": False,
        "eva_config": None,
        "exclude_modules": None,
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
        "kasa_config": None,
        "layer_replication": None,
        "layers_pattern": None,
        "layers_to_transform": None,
        "loftq_config": {},
        "lora_alpha": alpha,
        "lora_bias": False,
        "lora_dropout": 0.0,
        "lora_ga_config": None,
        "megatron_config": None,
        "megatron_core": "megatron.core",
        "modules_to_save": None,
        "monteclora_config": None,
        "peft_type": "LORA",
        "peft_version": PEFT_VERSION,
        "qalora_group_size": 16,
        "r": r,
        "rank_pattern": {},
        "revision": None,
        "target_modules": targets,
        "target_parameters": None,
        "task_type": "CAUSAL_LM",
        "trainable_token_indices": None,
        "use_bdlora": None,
        "use_dora": False,
        "use_qalora": False,
        "use_rslora": False,
        "velora_config": None,
    }
    unknown = set(overrides) - set(config)
    assert not unknown, f"not a LoraConfig key: {unknown}"
    config.update(overrides)
    return config


def lora_tensors(name: str, config: dict[str, Any], base: Tensors) -> Tensors:
    """peft's saved LoRA (+ DoRA magnitude) tensors, as after some training: A as peft's
    Kaiming-uniform init, B and the magnitudes moved away from their zero / norm init."""
    tensors: Tensors = {}
    for layer in range(LAYERS):
        for module in sorted(MODULE_SHAPES):
            short = module.rsplit(".", 1)[1]
            if short not in config["target_modules"]:
                continue
            out_dim, in_dim = MODULE_SHAPES[module]
            r = config["rank_pattern"].get(short, config["r"])
            key = f"base_model.model.model.layers.{layer}.{module}"
            bound = 1.0 / math.sqrt(in_dim)
            tensors[f"{key}.lora_A.weight"] = uniform(f"{name}/{key}/A", (r, in_dim), bound)
            tensors[f"{key}.lora_B.weight"] = uniform(f"{name}/{key}/B", (out_dim, r), 0.05)
            if config["use_dora"]:
                # Row norms of the base weight (peft's init), exactly rounded (fsum, sqrt).
                rows = base[f"model.layers.{layer}.{module}.weight"].tolist()
                noise = uniform(f"{name}/{key}/m", (out_dim,), 0.05).tolist()
                magnitude = [
                    math.sqrt(math.fsum(w * w for w in row)) * (1.0 + n)
                    for row, n in zip(rows, noise, strict=True)
                ]
                tensors[f"{key}.lora_magnitude_vector"] = np.array(magnitude, dtype="<f4")
    return tensors


def model_card(title: str, about: str) -> str:
    """peft's model-card front matter and framework line around a short description."""
    return (
        f"---\nbase_model: {BASE_NAME}\nlibrary_name: peft\npipeline_tag: text-generation\n"
        f"tags:\n- base_model:adapter:{BASE_NAME}\n- lora\n- transformers\n---\n\n"
        f"# {title}\n\n{about}\n\nMade by `examples/make_examples.py` of the Adapter Registry "
        "repository: random weights in peft's file format, for the README walk-through; not "
        f"trained, not for inference.\n### Framework versions\n\n- PEFT {PEFT_VERSION}"
    )


ADAPTERS = {
    "adapters/support-bot-v1": (
        lora_config(
            ["v_proj", "o_proj", "q_proj"],
            4,
            8,
            rank_pattern={"v_proj": 8},
            alpha_pattern={"v_proj": 32},
        ),
        "LoRA, rank 4 (v_proj rank 8, alpha 32) on q_proj, v_proj and o_proj.",
    ),
    "adapters/support-bot-v2": (
        lora_config(["v_proj", "q_proj"], 4, 8, use_dora=True),
        "DoRA, rank 4, on q_proj and v_proj.",
    ),
    "adapters/billing-bot": (
        lora_config(["k_proj", "v_proj", "o_proj", "q_proj"], 8, 16, use_rslora=True),
        "rsLoRA, rank 8, on q_proj, k_proj, v_proj and o_proj.",
    ),
    "broken/truncated-safetensors": (
        lora_config(["v_proj", "q_proj"], 4, 4),
        "LoRA, rank 4, on q_proj and v_proj, whose adapter_model.safetensors was cut short in "
        "transfer: the header is intact, the data ends before the offsets it claims.",
    ),
}
TRUNCATED = "broken/truncated-safetensors"


def dump_json(data: dict[str, Any], *, final_newline: bool) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + ("\n" if final_newline else "")).encode()


def build() -> dict[str, bytes]:
    """Every generated file: its path under examples/ -> its bytes."""
    base = base_tensors()
    files = {
        "bases/tiny-llama/config.json": dump_json(base_config(), final_newline=True),
        "bases/tiny-llama/generation_config.json": dump_json(GENERATION_CONFIG, final_newline=True),
        "bases/tiny-llama/model.safetensors": save(base, metadata={"format": "pt"}),
    }
    for folder, (config, about) in ADAPTERS.items():
        weights = save(lora_tensors(folder, config, base), metadata={"format": "pt"})
        if folder == TRUNCATED:
            header_end = 8 + struct.unpack("<Q", weights[:8])[0]
            weights = weights[: header_end + (len(weights) - header_end) * 2 // 3]
        files[f"{folder}/adapter_config.json"] = dump_json(config, final_newline=False)
        files[f"{folder}/adapter_model.safetensors"] = weights
        files[f"{folder}/README.md"] = model_card(folder.rsplit("/", 1)[1], about).encode()
    return files


def write(out: Path) -> list[Path]:
    """Replace the generated folders under ``out`` with fresh ones; the paths written."""
    for name in OUTPUTS:
        shutil.rmtree(out / name, ignore_errors=True)
    written = []
    for relative, data in sorted(build().items()):
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=HERE, help="where to write (default: here)")
    write(parser.parse_args(argv).out)


if __name__ == "__main__":
    main()
