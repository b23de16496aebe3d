"""Validate time of a 1 GiB synthetic safetensors adapter (headers only).

A LoRA adapter over a synthetic Llama-7B-shaped base manifest (32 layers, hidden 4096,
intermediate 11008, all 7 linear projections targeted, F32) with the rank chosen so the file
is >= 1 GiB. The file is sparse: a valid header followed by a hole of zeros up to the exact size
the offsets claim. Timed, in-process: ``parse_header`` alone and ``validate_adapter`` (config,
README, header, structural checks against the base manifest; the NaN/Inf scan is skipped above
the scan limit). Every read goes through a counting ``FileSource`` wrapper, so the bytes actually
read are reported. The file is removed afterwards.

    python -m bench.validate [--quick]
"""

from __future__ import annotations

import json
import os
import statistics
import struct
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._common import ADAPTER_DIR, mark, parse_args, print_table, wait_for_quiet, write_json

NAME = "validate"
TARGET_MS = 10.0
GIB = 1024**3

LAYERS = 32
HIDDEN = 4096
INTERMEDIATE = 11008
VOCAB = 32000
HEADS = 32
# module -> (in_features, out_features)
MODULES = {
    "self_attn.q_proj": (HIDDEN, HIDDEN),
    "self_attn.k_proj": (HIDDEN, HIDDEN),
    "self_attn.v_proj": (HIDDEN, HIDDEN),
    "self_attn.o_proj": (HIDDEN, HIDDEN),
    "mlp.gate_proj": (HIDDEN, INTERMEDIATE),
    "mlp.up_proj": (HIDDEN, INTERMEDIATE),
    "mlp.down_proj": (INTERMEDIATE, HIDDEN),
}


class CountingSource:
    """Wraps a ``FileSource``: counts calls and bytes returned by ``read_at``."""

    def __init__(self, path: Path) -> None:
        from registry.validation.source import FileSource

        self._inner = FileSource(path)
        self.reads = 0
        self.bytes_read = 0

    @property
    def size(self) -> int:
        return self._inner.size

    def read_at(self, offset: int, length: int) -> bytes:
        data = self._inner.read_at(offset, length)
        self.reads += 1
        self.bytes_read += len(data)
        return data


def base_manifest() -> Any:
    from registry.validation.manifest import BaseManifest

    tensors: dict[str, tuple[str, tuple[int, ...]]] = {
        "model.embed_tokens.weight": ("BF16", (VOCAB, HIDDEN)),
        "model.norm.weight": ("BF16", (HIDDEN,)),
        "lm_head.weight": ("BF16", (VOCAB, HIDDEN)),
    }
    for i in range(LAYERS):
        p = f"model.layers.{i}"
        tensors[f"{p}.input_layernorm.weight"] = ("BF16", (HIDDEN,))
        tensors[f"{p}.post_attention_layernorm.weight"] = ("BF16", (HIDDEN,))
        for module, (fan_in, fan_out) in MODULES.items():
            tensors[f"{p}.{module}.weight"] = ("BF16", (fan_out, fan_in))
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_attention_heads": HEADS,
        "num_key_value_heads": HEADS,
        "num_hidden_layers": LAYERS,
        "vocab_size": VOCAB,
        "tie_word_embeddings": False,
    }
    return BaseManifest(tensors=tensors, config=config)


def lora_bytes(rank: int) -> int:
    per_layer = sum(rank * (fan_in + fan_out) for fan_in, fan_out in MODULES.values())
    return per_layer * LAYERS * 4  # F32


def write_adapter(directory: Path, target_bytes: int) -> tuple[int, int]:
    """Write config, README and a sparse safetensors file of >= ``target_bytes``.

    Returns (rank, file size).
    """
    rank = 8
    while lora_bytes(rank) < target_bytes:
        rank += 8
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for i in range(LAYERS):
        for module, (fan_in, fan_out) in sorted(MODULES.items()):
            stem = f"base_model.model.model.layers.{i}.{module}"
            for part, shape in (("lora_A", [rank, fan_in]), ("lora_B", [fan_out, rank])):
                nbytes = shape[0] * shape[1] * 4
                header[f"{stem}.{part}.weight"] = {
                    "dtype": "F32",
                    "shape": shape,
                    "data_offsets": [offset, offset + nbytes],
                }
                offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    size = 8 + len(raw) + offset
    path = directory / "adapter_model.safetensors"
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        fh.truncate(size)  # sparse hole: zeros, no disk blocks
    config = json.loads((ADAPTER_DIR / "adapter_config.json").read_text())
    config.update(
        base_model_name_or_path="bench/llama-7b-shaped",
        r=rank,
        lora_alpha=2 * rank,
        target_modules=sorted(m.split(".")[-1] for m in MODULES),
        fan_in_fan_out=False,
        task_type="CAUSAL_LM",
        peft_type="LORA",
    )
    (directory / "adapter_config.json").write_text(json.dumps(config, indent=2))
    (directory / "README.md").write_bytes((ADAPTER_DIR / "README.md").read_bytes())
    return rank, size


def time_calls(fn: Any, runs: int) -> tuple[float, list[float]]:
    """(first call ms, ms of the following ``runs`` calls)."""
    t0 = time.perf_counter()
    fn()
    first = (time.perf_counter() - t0) * 1000
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return first, out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from registry.validation.adapter import DEFAULT_SCAN_LIMIT_BYTES, validate_adapter
    from registry.validation.safetensors import parse_header

    args = parse_args(__doc__ or NAME, argv)
    wait_for_quiet()
    target = (GIB // 4) if args.quick else GIB
    runs = 20 if args.quick else 50
    manifest = base_manifest()
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp_s:
        tmp = Path(tmp_s)
        rank, size = write_adapter(tmp, target)
        weights = tmp / "adapter_model.safetensors"
        allocated = os.stat(weights).st_blocks * 512

        # parse_header alone
        src = CountingSource(weights)
        first_parse, parse_ms = time_calls(lambda: parse_header(src), runs)
        parse_bytes = src.bytes_read // (runs + 1)
        parse_reads = src.reads // (runs + 1)
        header = parse_header(src)

        # validate_adapter: every file through a counting source
        sources: dict[str, CountingSource] = {}

        def validate() -> Any:
            sources.clear()
            for name in ("adapter_config.json", "adapter_model.safetensors", "README.md"):
                sources[name] = CountingSource(tmp / name)
            return validate_adapter(dict(sources), base=manifest)

        first_val, val_ms = time_calls(validate, runs)
        report = validate()
        val_bytes = sum(s.bytes_read for s in sources.values())
        val_reads = sum(s.reads for s in sources.values())
        weights_bytes = sources["adapter_model.safetensors"].bytes_read
    # the temporary directory (and the 1 GiB file) is gone here

    p_med, v_med = statistics.median(parse_ms), statistics.median(val_ms)
    ok = v_med < TARGET_MS
    rows = [
        [
            "parse_header",
            round(first_parse, 3),
            round(p_med, 3),
            round(max(parse_ms), 3),
            parse_reads,
            parse_bytes,
            "",
        ],
        [
            "validate_adapter (vs base manifest)",
            round(first_val, 3),
            round(v_med, 3),
            round(max(val_ms), 3),
            val_reads,
            val_bytes,
            mark(ok),
        ],
    ]
    print(
        f"\nfile: {size:,} bytes ({size / GIB:.3f} GiB, {allocated:,} bytes allocated on disk), "
        f"LoRA r={rank} on 7 projections x {LAYERS} layers, {len(header.tensors)} tensors, "
        f"header {header.header_len:,} bytes; scan limit {DEFAULT_SCAN_LIMIT_BYTES:,} bytes"
    )
    print_table(
        f"Validate a {size / GIB:.2f} GiB safetensors adapter (ms; median of {runs} warm runs)",
        ["operation", "first", "median", "max", "read calls", "bytes read", f"< {TARGET_MS:g} ms"],
        rows,
    )
    warnings = list(getattr(report, "warnings", []))
    print(f"validate_adapter warnings: {warnings}")
    checks = [
        {
            "name": "validate 1 GiB adapter (median)",
            "value": round(v_med, 3),
            "target": f"< {TARGET_MS} ms",
            "ok": ok,
        }
    ]
    write_json(
        NAME,
        {
            "file_bytes": size,
            "allocated_bytes": allocated,
            "rank": rank,
            "tensors": len(header.tensors),
            "header_bytes": header.header_len,
            "runs": runs,
            "parse_header_ms": {"first": first_parse, "median": p_med, "max": max(parse_ms)},
            "parse_header_bytes_read": parse_bytes,
            "validate_ms": {"first": first_val, "median": v_med, "max": max(val_ms)},
            "validate_bytes_read": val_bytes,
            "validate_weights_bytes_read": weights_bytes,
            "validate_read_calls": val_reads,
            "warnings": warnings,
            "checks": checks,
        },
    )
    return {"name": NAME, "checks": checks}


if __name__ == "__main__":
    main()
