"""Logical shapes of a pre-quantized base checkpoint (QLoRA bases), from its headers.

A checkpoint whose ``config.json`` has a ``quantization_config`` stores some weights packed. A LoRA
trained on it (QLoRA) names the same modules with the *logical* shapes, so the manifest keeps
those: the packed ``<module>.weight`` becomes its logical ``[out, in]`` and the quantization's
bookkeeping tensors are dropped. bitsandbytes, as transformers saves it (``save_pretrained`` of a
model loaded with ``BitsAndBytesConfig``):

* 4-bit (``load_in_4bit``, nf4/fp4): ``<m>.weight`` ``U8 [ceil(out*in/2), 1]`` plus
  ``weight.absmax``, ``weight.quant_map``, with double quantization ``weight.nested_absmax`` and
  ``weight.nested_quant_map``, and ``weight.quant_state.bitsandbytes__nf4`` (or ``__fp4``): a
  ``U8`` tensor holding JSON with the logical ``shape`` and ``dtype``. That tensor (a few hundred
  bytes; at most :data:`MAX_QUANT_STATE_BYTES` each) is the only data read.
* 8-bit (``load_in_8bit``): ``<m>.weight`` ``I8 [out, in]`` (already logical) plus ``<m>.SCB``
  and ``<m>.weight_format``.

GPTQ and AWQ (GEMM, GEMV) int32-packed linear layers are translated by
:mod:`.quantized_linear` (``qweight``/``qzeros``/``scales``/``g_idx`` -> ``<m>.weight``), from
shapes alone. Other methods are recorded (:func:`quantization_of`) but their layouts are not
translated: their modules keep no ``.weight`` and a LoRA naming them fails as
``missing_modules``. Merging into any quantized base is refused (``not_mergeable`` /
``quantized_base``): merge into the unquantized base it was made from.

Errors: :class:`~registry.errors.InvalidBaseModel` reason ``bad_quantization`` (a malformed
``quantization_config``, a quant state that is not the JSON bitsandbytes writes, a packed size
that does not hold the logical shape, or a packed weight without its quant state; GPTQ/AWQ: see
:mod:`.quantized_linear`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, NoReturn

from registry.errors import InvalidBaseModel
from registry.validation.quantized_linear import packed_linear_tensors
from registry.validation.safetensors import SafetensorsHeader, TensorInfo
from registry.validation.source import ByteSource

MAX_QUANT_STATE_BYTES = 4096
_STATE = re.compile(r"(?P<weight>.+\.weight)\.quant_state\.bitsandbytes__(?P<kind>nf4|fp4)\Z")
_BNB4_AUX = ("absmax", "quant_map", "nested_absmax", "nested_quant_map")
_BNB8_AUX = ("SCB", "weight_format")
_DTYPES = {"float16": "F16", "bfloat16": "BF16", "float32": "F32"}

TensorSpec = tuple[str, tuple[int, ...]]


def _fail(detail: str, **context: Any) -> NoReturn:
    raise InvalidBaseModel(detail, reason="bad_quantization", context=context)


def quantization_of(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """``{"method", "bits", "group_size"?, "quant_type"?, "version"?}`` from
    ``quantization_config``, or None (``version``: AWQ's packing, lower-cased).

    Raises:
        InvalidBaseModel: ``bad_quantization``.
    """
    qc = config.get("quantization_config")
    if qc is None:
        return None
    if not isinstance(qc, dict) or not isinstance(qc.get("quant_method"), str):
        _fail("quantization_config needs a quant_method", file="config.json")
    method = qc["quant_method"]
    found: dict[str, Any] = {"method": method}
    if method == "bitsandbytes":
        four, eight = qc.get("load_in_4bit") is True, qc.get("load_in_8bit") is True
        if four == eight:
            _fail("bitsandbytes quantization_config needs one of load_in_4bit / load_in_8bit")
        found["bits"] = 4 if four else 8
        if four:
            found["quant_type"] = str(qc.get("bnb_4bit_quant_type", "fp4"))
    else:
        bits, group = qc.get("bits", qc.get("w_bit")), qc.get("group_size", qc.get("q_group_size"))
        if isinstance(bits, int) and not isinstance(bits, bool):
            found["bits"] = bits
        if isinstance(group, int) and not isinstance(group, bool):
            found["group_size"] = group
        if method == "awq" and isinstance(qc.get("version", "gemm"), str):
            found["version"] = qc.get("version", "gemm").lower()
    return found


def _state(src: ByteSource, header: SafetensorsHeader, info: TensorInfo) -> dict[str, Any]:
    if info.dtype != "U8" or len(info.shape) != 1 or info.nbytes > MAX_QUANT_STATE_BYTES:
        _fail("quant state is not a small U8 vector", tensor=info.name)
    raw = src.read_at(header.data_start + info.begin, info.nbytes)
    try:
        state = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        _fail("quant state is not JSON", tensor=info.name)
    shape = state.get("shape") if isinstance(state, dict) else None
    if not (
        isinstance(shape, list)
        and shape
        and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
    ):
        _fail("quant state has no logical shape", tensor=info.name)
    assert isinstance(state, dict)
    return state


def logical_tensors(
    config: Mapping[str, Any],
    tensors: Mapping[str, TensorSpec],
    sources: list[tuple[ByteSource, SafetensorsHeader]],
) -> dict[str, TensorSpec]:
    """``tensors`` with bitsandbytes-, GPTQ- or AWQ-packed weights given their logical shape and
    dtype, and the quantization's bookkeeping tensors dropped (unchanged for an unquantized base).

    Raises:
        InvalidBaseModel: ``bad_quantization``.
    """
    quant = quantization_of(config)
    if quant is not None and quant["method"] in ("gptq", "awq"):
        return packed_linear_tensors(config["quantization_config"], tensors)
    if quant is None or quant["method"] != "bitsandbytes":
        return dict(tensors)
    out = dict(tensors)
    if quant["bits"] == 8:
        for name in tensors:
            if name.endswith(".weight") and tensors[name][0] == "I8":
                for aux in _BNB8_AUX:
                    out.pop(name.removesuffix("weight") + aux, None)
        return out
    for src, header in sources:
        for name, info in header.tensors.items():
            match = _STATE.match(name)
            if match is None:
                continue
            weight = match["weight"]
            state = _state(src, header, info)
            packed = tensors.get(weight)
            shape = tuple(state["shape"])
            if packed is None or math.prod(packed[1]) * 2 < math.prod(shape):
                _fail("packed weight does not hold its logical shape", tensor=weight)
            dtype = _DTYPES.get(str(state.get("dtype")), "F16")
            out[weight] = (dtype, shape)
            out.pop(name)
            for aux in _BNB4_AUX:
                out.pop(f"{weight}.{aux}", None)
    for name in sorted(n for n in out if n.endswith(".weight.absmax")):
        _fail("packed weight without its quant state", tensor=name.removesuffix(".absmax"))
    return out
