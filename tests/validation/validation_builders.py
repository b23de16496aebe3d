"""Byte-level builders for validation tests: hand-made safetensors and adapter file sets."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from safetensors.numpy import load, save

from registry.errors import AdapterInvalid
from registry.validation import (
    BaseManifest,
    ByteSource,
    BytesSource,
    ValidationReport,
    validate_adapter,
)

Array = npt.NDArray[Any]

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The peft fixture set; REGISTRY_FIXTURES (relative to the repo root, or absolute) overrides it.
FIXTURES = (REPO_ROOT / os.environ.get("REGISTRY_FIXTURES", "../shared/fixtures/peft")).resolve()


def raw_safetensors(
    header: bytes | dict[str, Any], data: bytes = b"", *, n: int | None = None
) -> bytes:
    """8-byte length + header (a dict is JSON-encoded as is) + data; ``n`` overrides the length."""
    body = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(body) if n is None else n) + body + data


def entries(*specs: tuple[str, str, list[int], int]) -> tuple[dict[str, Any], bytes]:
    """Contiguous header entries from (name, dtype, shape, nbytes) and zero-filled data."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, dtype, shape, nbytes in specs:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    return header, bytes(offset)


def st_bytes(tensors: dict[str, Array]) -> bytes:
    """A valid safetensors file written by the reference library."""
    return save(tensors, metadata={"format": "pt"})


class CountingSource:
    """Wraps bytes, may claim a larger size, and counts what is read (for header-only checks)."""

    def __init__(self, data: bytes, *, size: int | None = None) -> None:
        self._data = data
        self._size = len(data) if size is None else size
        self.bytes_read = 0

    @property
    def size(self) -> int:
        return self._size

    def read_at(self, offset: int, length: int) -> bytes:
        chunk = self._data[offset : offset + length]
        self.bytes_read += len(chunk)
        return chunk


def load_adapter(path: Path) -> tuple[dict[str, Any], dict[str, Array]]:
    """A fixture adapter's config dict and tensors."""
    config: dict[str, Any] = json.loads((path / "adapter_config.json").read_text())
    return config, load((path / "adapter_model.safetensors").read_bytes())


def adapter_files(
    config: dict[str, Any], tensors: dict[str, Array], extra: dict[str, bytes] | None = None
) -> dict[str, ByteSource]:
    """An in-memory adapter: config + weights (+ extra files by name)."""
    files: dict[str, ByteSource] = {
        "adapter_config.json": BytesSource(json.dumps(config).encode()),
        "adapter_model.safetensors": BytesSource(st_bytes(tensors)),
    }
    files.update({name: BytesSource(data) for name, data in (extra or {}).items()})
    return files


def f32(*shape: int, value: float = 0.5) -> Array:
    return np.full(shape, value, dtype=np.float32)


# --- shared by the validate_adapter test modules --------------------------------------------

LLAMA_Q = "base_model.model.model.layers.0.self_attn.q_proj"
GPT2_ATTN = "base_model.model.transformer.h.0.attn.c_attn"
Lora = tuple[dict[str, Any], dict[str, "Array"]]


def expect_invalid(
    config: dict[str, Any],
    tensors: dict[str, Array],
    base: BaseManifest | None,
    extra: dict[str, bytes] | None = None,
) -> AdapterInvalid:
    """The error ``validate_adapter`` raises for these files (fails the test if none)."""
    with pytest.raises(AdapterInvalid) as info:
        validate_adapter(adapter_files(config, tensors, extra), base=base)
    return info.value


def expect_valid(
    config: dict[str, Any], tensors: dict[str, Array], base: BaseManifest | None
) -> ValidationReport:
    return validate_adapter(adapter_files(config, tensors), base=base)


def lora_tensors(module: str, r: int, fin: int, fout: int) -> dict[str, Array]:
    return {f"{module}.lora_A.weight": f32(r, fin), f"{module}.lora_B.weight": f32(fout, r)}
