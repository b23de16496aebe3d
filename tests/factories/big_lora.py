"""Large but valid LoRA adapters of the shared tiny gpt2 base, written without torch: the
safetensors header by hand, then finite float32 data streamed in 1 MiB blocks (constant
memory, so the benchmarks can write 2 GiB).

Rank ``r`` costs 2 KiB of tensor data (``c_attn`` of both layers: A ``rx64``, B ``192xr``,
float32), so ``data_bytes`` picks ``r = data_bytes // 2048``. ``seed`` varies the bytes (and
so the digests) between adapters of the same size.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

from tests.fixtures.peft import PEFT_FIXTURES

GPT2_LORA = PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn"
BYTES_PER_RANK = 2048
_BLOCK = 1024 * 1024


def _tensors(rank: int) -> tuple[dict[str, object], int]:
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for layer in (0, 1):
        prefix = f"base_model.model.transformer.h.{layer}.attn.c_attn"
        for part, shape in (("lora_A", [rank, 64]), ("lora_B", [192, rank])):
            size = shape[0] * shape[1] * 4
            header[f"{prefix}.{part}.weight"] = {
                "dtype": "F32",
                "shape": shape,
                "data_offsets": [offset, offset + size],
            }
            offset += size
    return header, offset


def write_big_lora(target: Path, *, data_bytes: int, seed: int = 0) -> str:
    """Write ``adapter_config.json`` and a ``adapter_model.safetensors`` of about
    ``data_bytes`` of tensor data into ``target``; returns the safetensors file's sha256 hex."""
    rank = max(1, data_bytes // BYTES_PER_RANK)
    target.mkdir(parents=True, exist_ok=True)
    config = json.loads((GPT2_LORA / "adapter_config.json").read_text())
    config |= {"r": rank, "lora_alpha": 2 * rank}
    (target / "adapter_config.json").write_text(json.dumps(config, indent=2))
    header, total = _tensors(rank)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    floats = [((i * 7919 + seed * 104729) % 2001 - 1000) / 1e5 for i in range(_BLOCK // 4)]
    block = struct.pack(f"<{len(floats)}f", *floats)
    hasher = hashlib.sha256()
    with (target / "adapter_model.safetensors").open("wb") as out:
        for chunk in (struct.pack("<Q", len(raw)), raw):
            out.write(chunk)
            hasher.update(chunk)
        left = total
        while left:
            chunk = block[: min(left, _BLOCK)]
            out.write(chunk)
            hasher.update(chunk)
            left -= len(chunk)
    return hasher.hexdigest()
