"""Validate time of one adapter of each method on a Llama-7B-shaped base (headers only).

For each peft type in ``CONFIGS``, a worker process builds the real peft model on torch's
``meta`` device (no weights are allocated: a Llama with 32 layers, hidden 4096, intermediate
11008), wraps it with peft's own ``get_peft_model`` and records the names, dtypes and shapes of
what ``get_peft_model_state_dict`` would save, and peft's adapter_config.json. The parent writes a
sparse safetensors file with that header (a hole of zeros for the data: its size is what the
offsets claim), a base manifest from the meta model's own tensors, and times
``validate_adapter`` (config, README, header, the method's structural checks against the base)
on its header-only path, the one a 1 GB adapter takes (``scan_limit_bytes=0``: the NaN/Inf scan
of the data, done below the 64 MiB scan limit, is off, and so is the reading of sparse methods'
index data, which follows the same limit), through a counting source, so the bytes read are
printed too. Sparse methods with index tensors (SHIRA) are timed again at the default scan limit,
their indices read and checked, in a second table without a target. A type whose tuner cannot
be built on ``meta`` (it computes on the base weights, e.g. an SVD at init) is built again with
real random weights on a smaller Llama (:data:`REAL_SHAPE`, labelled in the row: fewer, smaller
modules than 7B, so compare it per tensor), and listed with the reason instead of a figure if
that fails too.

Validation reads the header and never the data, so its time follows the number of tensors and
the config, not the file size: the 1 GiB LoRA of ``bench.validate`` is the size figure, this
table is the per-method one (each method at its own realistic size on a 7B base).

    python -m bench.validate_methods [--quick]
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._common import ADAPTER_DIR, mark, parse_args, print_table, wait_for_quiet, write_json
from bench.validate import TARGET_MS, CountingSource, time_calls

NAME = "validate_methods"
T = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ATTN = ["q_proj", "k_proj", "v_proj", "o_proj"]
# peft type -> (config class, keyword arguments): each at a size a 7B adapter of it has in use.
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "LORA": ("LoraConfig", {"r": 64, "target_modules": T}),
    "LORA (DoRA)": ("LoraConfig", {"r": 16, "use_dora": True, "target_modules": T}),
    "ADALORA": (
        "AdaLoraConfig",
        {"init_r": 12, "target_r": 8, "total_step": 10, "target_modules": T},
    ),
    "LOHA": ("LoHaConfig", {"r": 16, "target_modules": T}),
    "LOKR": ("LoKrConfig", {"r": 16, "target_modules": T}),
    "IA3": (
        "IA3Config",
        {"target_modules": ["k_proj", "v_proj", "down_proj"], "feedforward_modules": ["down_proj"]},
    ),
    "PROMPT_TUNING": ("PromptTuningConfig", {"num_virtual_tokens": 64, "task_type": "CAUSAL_LM"}),
    "PREFIX_TUNING": ("PrefixTuningConfig", {"num_virtual_tokens": 64, "task_type": "CAUSAL_LM"}),
    "BEFT": ("BeftConfig", {"target_modules": T}),
    "VERA": ("VeraConfig", {"r": 256, "target_modules": T}),
    "VBLORA": (
        "VBLoRAConfig",
        {"r": 4, "num_vectors": 2048, "vector_length": 256, "target_modules": T},
    ),
    "RANDLORA": ("RandLoraConfig", {"r": 32, "target_modules": ATTN}),
    "FOURIERFT": ("FourierFTConfig", {"n_frequency": 1000, "target_modules": T}),
    "OFT": ("OFTConfig", {"r": 0, "oft_block_size": 32, "target_modules": T}),
    "HRA": ("HRAConfig", {"r": 8, "target_modules": T}),
    "SHIRA": ("ShiraConfig", {"r": 32, "target_modules": T}),
    "LN_TUNING": (
        "LNTuningConfig",
        {"target_modules": ["input_layernorm", "post_attention_layernorm"]},
    ),
    "C3A": ("C3AConfig", {"block_size": 256, "target_modules": ATTN}),
    "MISS": ("MissConfig", {"r": 64, "target_modules": T}),
    "DELORA": ("DeloraConfig", {"r": 16, "target_modules": T}),
    "GRALORA": ("GraloraConfig", {"r": 32, "gralora_k": 4, "target_modules": T}),
    "TRAINABLE_TOKENS": ("TrainableTokensConfig", {"token_indices": list(range(0, 4096, 4))}),
    "TINYLORA": ("TinyLoraConfig", {"r": 2, "u": 64, "weight_tying": 0.5, "target_modules": T}),
    "FROD": ("FrodConfig", {"sparse_rate": 0.01, "target_modules": ATTN}),
    "ADAMSS": ("AdamssConfig", {"r": 100, "num_subspaces": 5, "target_modules": ATTN}),
    "CARTRIDGE": ("CartridgeConfig", {"num_virtual_tokens": 64, "task_type": "CAUSAL_LM"}),
}
MEMORY_LIMIT = 6 * 1024**3  # a tuner that allocates real tensors at init fails fast, not the box
WORKER_TIMEOUT_S = 300


#: The Llama-7B shape every method is built at on ``meta``.
SHAPE_7B = {
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
}
#: A smaller Llama with real (random) weights, for tuners that compute on the base weights at init
#: (an SVD, k-means, a least-squares solve) and so cannot be built on ``meta``.
REAL_SHAPE = {
    "hidden_size": 1024,
    "intermediate_size": 2752,
    "num_hidden_layers": 8,
    "num_attention_heads": 8,
    "num_key_value_heads": 8,
}
REAL_LABEL = "real weights, hidden 1024 x 8 layers"


def _worker(kind: str, real: bool = False) -> None:
    """In a child process: print the adapter's header spec, config and the base's tensors."""
    import warnings

    import peft
    import torch
    import transformers

    warnings.filterwarnings("ignore")
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    cls_name, kwargs = CONFIGS[kind]
    shape = REAL_SHAPE if real else SHAPE_7B
    config = transformers.LlamaConfig(vocab_size=32000, tie_word_embeddings=False)
    for key, value in shape.items():
        setattr(config, key, value)
    config.head_dim = shape["hidden_size"] // shape["num_attention_heads"]
    config.use_cache = False
    with torch.device("cpu" if real else "meta"):
        model = transformers.LlamaForCausalLM(config)
    base = {k: (str(v.dtype), list(v.shape)) for k, v in model.state_dict().items()}
    peft_config = getattr(peft, cls_name)(**kwargs)
    wrapped = peft.get_peft_model(model, peft_config)
    saved = peft.get_peft_model_state_dict(wrapped)
    spec = {k: (str(v.dtype), list(v.shape)) for k, v in saved.items()}
    with tempfile.TemporaryDirectory() as tmp:
        wrapped.peft_config["default"].save_pretrained(tmp)
        cfg = json.loads((Path(tmp) / "adapter_config.json").read_text())
    out = {"tensors": spec, "config": cfg, "base": base, "model_config": config.to_dict()}
    sys.stdout.write(json.dumps(out))


DTYPES = {"torch.float32": ("F32", 4), "torch.bfloat16": ("BF16", 2), "torch.float16": ("F16", 2)}
DTYPES |= {"torch.int64": ("I64", 8), "torch.int32": ("I32", 4), "torch.bool": ("BOOL", 1)}


def _write(directory: Path, built: dict[str, Any]) -> int:
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in sorted(built["tensors"].items()):
        code, width = DTYPES[dtype]
        nbytes = width
        for dim in shape:
            nbytes *= dim
        header[name] = {"dtype": code, "shape": shape, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    size = 8 + len(raw) + offset
    with (directory / "adapter_model.safetensors").open("wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        fh.truncate(size)
    config = dict(built["config"], base_model_name_or_path="bench/llama-7b-shaped")
    (directory / "adapter_config.json").write_text(json.dumps(config))
    (directory / "README.md").write_bytes((ADAPTER_DIR / "README.md").read_bytes())
    return size


def _manifest(built: dict[str, Any]) -> Any:
    from registry.validation.manifest import BaseManifest

    tensors = {k: ("BF16", tuple(shape)) for k, (_, shape) in built["base"].items()}
    return BaseManifest(tensors=tensors, config=built["model_config"])


def _build(kind: str) -> dict[str, Any] | str:
    """The adapter built on ``meta`` at 7B size, else with real weights at :data:`REAL_SHAPE`
    (``"real"`` in the result), else why neither could be built."""
    built = _build_in(kind, real=False)
    if isinstance(built, str) and "meta" in built.lower():
        real = _build_in(kind, real=True)
        return real if isinstance(real, dict) else built
    return built


def _build_in(kind: str, *, real: bool) -> dict[str, Any] | str:
    cmd = [sys.executable, "-m", "bench.validate_methods", "--worker", kind]
    cmd += ["--real"] if real else []
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return "timed out building on meta"
    if done.returncode != 0:
        last = [line for line in done.stderr.strip().splitlines() if line.strip()][-1:]
        return f"not buildable on meta: {last[0][:90] if last else done.returncode}"
    result: dict[str, Any] = json.loads(done.stdout)
    result["real"] = real
    return result


def _measure(kind: str, built: dict[str, Any], runs: int, scan_limit: int = 0) -> list[Any]:
    from registry.validation.adapter import validate_adapter

    manifest = _manifest(built)
    with tempfile.TemporaryDirectory(prefix="bench-validate-methods-") as tmp_s:
        tmp = Path(tmp_s)
        size = _write(tmp, built)
        sources: dict[str, CountingSource] = {}

        def validate() -> Any:
            sources.clear()
            for name in ("adapter_config.json", "adapter_model.safetensors", "README.md"):
                sources[name] = CountingSource(tmp / name)
            return validate_adapter(dict(sources), base=manifest, scan_limit_bytes=scan_limit)

        report = validate()
        _, times = time_calls(validate, runs)
        read = sum(s.bytes_read for s in sources.values())
    median = statistics.median(times)
    assert report.checked_against_base, kind
    label = f"{kind} ({REAL_LABEL})" if built.get("real") else kind
    if scan_limit:
        label += f", indices read (scan limit {scan_limit:,})"
    return [
        label,
        report.peft_type,
        len(built["tensors"]),
        size,
        read,
        round(median, 3),
        mark(median < TARGET_MS),
    ]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    if argv is None and len(sys.argv) in (3, 4) and sys.argv[1] == "--worker":
        _worker(sys.argv[2], real=sys.argv[3:] == ["--real"])
        return {}
    args = parse_args(__doc__ or NAME, argv)
    kinds = list(CONFIGS)[:4] if args.quick else list(CONFIGS)
    built = {kind: _build(kind) for kind in kinds}
    wait_for_quiet()
    from registry.validation.adapter import DEFAULT_SCAN_LIMIT_BYTES
    from registry.validation.methods.peft_sparse import SPARSE_RULES

    rows, skipped, extra = [], [], []
    for kind in kinds:
        result = built[kind]
        if isinstance(result, str):
            skipped.append([kind, result])
            continue
        rows.append(_measure(kind, result, 10 if args.quick else 30))
        if kind in SPARSE_RULES and SPARSE_RULES[kind].indices:
            # Not the header-only path (no target): the index data read at the default limit.
            extra.append(_measure(kind, result, 10 if args.quick else 30, DEFAULT_SCAN_LIMIT_BYTES))
    print_table(
        "Validate one adapter per method on a Llama-7B-shaped base (ms, median of warm runs)",
        [
            "method",
            "validated as",
            "tensors",
            "file bytes",
            "bytes read",
            "median ms",
            f"< {TARGET_MS:g} ms",
        ],
        rows,
    )
    if extra:
        print_table(
            "Sparse methods at the default scan limit (indices read and checked: not header-only)",
            ["method", "validated as", "tensors", "file bytes", "bytes read", "median ms", "-"],
            [[*row[:-1], "-"] for row in extra],
        )
    if skipped:
        print_table("Not measured", ["method", "why"], skipped)
    worst = max((row[5] for row in rows), default=0.0)
    checks = [
        {
            "name": "validate, slowest method (median)",
            "value": worst,
            "target": f"< {TARGET_MS} ms",
            "ok": worst < TARGET_MS,
        }
    ]
    write_json(NAME, {"rows": rows, "indices_read": extra, "skipped": skipped, "checks": checks})
    return {"name": NAME, "checks": checks}


if __name__ == "__main__":
    main()
