"""Tensor health: NaN/Inf scan of float tensors and all-zero detection.

Works on raw bit patterns with numpy (no float conversion, so no FP warnings and the same code
for F16/BF16/F32/F64): a value is NaN or Inf exactly when all its exponent bits are set, and it is
zero when every bit but the sign is clear. Data is read in bounded chunks, never all at once.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import numpy.typing as npt

from registry.errors import UnhealthyTensors
from registry.validation.safetensors import SafetensorsHeader, TensorInfo, iter_tensor_chunks
from registry.validation.source import ByteSource

DEFAULT_CHUNK_BYTES = 1 << 20  # a multiple of every itemsize, so no value straddles two chunks

# dtype -> (unsigned view, exponent mask, magnitude mask)
_FLOAT_BITS: dict[str, tuple[str, int, int]] = {
    "F16": ("<u2", 0x7C00, 0x7FFF),
    "BF16": ("<u2", 0x7F80, 0x7FFF),
    "F32": ("<u4", 0x7F80_0000, 0x7FFF_FFFF),
    "F64": ("<u8", 0x7FF0_0000_0000_0000, 0x7FFF_FFFF_FFFF_FFFF),
}

FLOAT_DTYPES = frozenset(_FLOAT_BITS)


def _view(chunk: bytes, dtype: str) -> npt.NDArray[np.unsignedinteger]:
    return np.frombuffer(chunk, dtype=np.dtype(_FLOAT_BITS[dtype][0]))


def _chunk_has_nan_or_inf(chunk: bytes, dtype: str) -> bool:
    _, exp_mask, _ = _FLOAT_BITS[dtype]
    bits = _view(chunk, dtype)
    return bool(np.any((bits & exp_mask) == exp_mask))


def _chunk_is_zero(chunk: bytes, dtype: str) -> bool:
    if dtype in _FLOAT_BITS:
        _, _, mag_mask = _FLOAT_BITS[dtype]
        return not bool(np.any(_view(chunk, dtype) & mag_mask))
    return not any(chunk)


def tensor_is_all_zero(
    src: ByteSource,
    header: SafetensorsHeader,
    tensor: TensorInfo,
    *,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    file_name: str = "adapter_model.safetensors",
) -> bool:
    """Return True when every element of ``tensor`` is zero (``-0.0`` counts as zero).

    Raises:
        CorruptSafetensors: ``truncated`` on a short read.
    """
    return all(
        _chunk_is_zero(chunk, tensor.dtype)
        for chunk in iter_tensor_chunks(
            src, header, tensor, chunk_bytes=chunk_bytes, file_name=file_name
        )
    )


def scan_tensors_health(
    src: ByteSource,
    header: SafetensorsHeader,
    *,
    limit_bytes: int,
    zero_check: Collection[str] = (),
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    file_name: str = "adapter_model.safetensors",
) -> list[str]:
    """Scan float tensors (F16, BF16, F32, F64) for NaN/Inf; return warnings.

    Reads data only when the whole buffer is at most ``limit_bytes`` (otherwise returns a single
    "skipped" warning and reads nothing). Tensors named in ``zero_check`` that are entirely zero
    produce a warning (e.g. an untrained LoRA ``lora_B``). ``chunk_bytes`` must be a multiple of 8.

    Raises:
        UnhealthyTensors: ``nan_or_inf``, naming the first offending tensor.
        CorruptSafetensors: ``truncated`` on a short read.
    """
    if chunk_bytes <= 0 or chunk_bytes % 8:
        raise ValueError("chunk_bytes must be a positive multiple of 8")
    if header.data_len > limit_bytes:
        return [
            f"tensor health scan skipped: {header.data_len} data bytes exceed "
            f"the scan limit of {limit_bytes}"
        ]
    warnings: list[str] = []
    wanted_zero = set(zero_check)
    for tensor in header.tensors.values():
        is_float = tensor.dtype in _FLOAT_BITS
        check_zero = tensor.name in wanted_zero
        if not (is_float or check_zero) or tensor.nbytes == 0:
            continue
        all_zero = True
        for chunk in iter_tensor_chunks(
            src, header, tensor, chunk_bytes=chunk_bytes, file_name=file_name
        ):
            if is_float and _chunk_has_nan_or_inf(chunk, tensor.dtype):
                raise UnhealthyTensors(
                    f"tensor {tensor.name} contains NaN or Inf",
                    reason="nan_or_inf",
                    context={"file": file_name, "tensor": tensor.name},
                )
            if check_zero and all_zero:
                all_zero = _chunk_is_zero(chunk, tensor.dtype)
        if check_zero and all_zero:
            warnings.append(f"tensor {tensor.name} is all zeros")
    return warnings
