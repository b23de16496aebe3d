"""Logical shapes of GPTQ and AWQ checkpoints' packed linear layers, from their headers only.

Each quantized ``nn.Linear`` ``<m>`` is saved as int32-packed buffers instead of ``<m>.weight``;
here its in/out features are inferred from those buffers, every companion is checked to agree,
and the manifest gets ``<m>.weight`` ``[out, in]`` (in the scales' dtype) with the buffers
dropped. ``<m>.bias`` (``[out]``) stays. Layouts, as the libraries register the buffers
(``register_buffer`` in ``__init__``, filled by ``pack`` / ``from_linear``):

* GPTQ (``quant_method: "gptq"``, ``checkpoint_format: "gptq"``, bits 2/3/4/8): AutoGPTQ
  ``auto_gptq/nn_modules/qlinear/qlinear_cuda_old.py`` (``QuantLinear``; transformers/optimum
  load the same), GPTQModel ``gptqmodel/nn_modules/qlinear/__init__.py`` (``BaseQuantLinear``,
  ``pack_dtype`` int32): ``qweight`` ``I32 [in*bits/32, out]``, ``qzeros``
  ``I32 [groups, out*bits/32]``, ``scales`` ``F16 [groups, out]``, ``g_idx`` ``I32 [in]`` with
  ``groups = ceil(in / group_size)`` (``group_size`` -1: one group).
* AWQ GEMM (``quant_method: "awq"``, ``version: "gemm"``, bits 4): AutoAWQ
  ``awq/modules/linear/gemm.py`` (``WQLinear_GEMM``): ``qweight`` ``I32 [in, out/8]``,
  ``qzeros`` ``I32 [in/group_size, out/8]``, ``scales`` ``F16 [in/group_size, out]``.
* AWQ GEMV (``version: "gemv"``): AutoAWQ ``awq/modules/linear/gemv.py`` (``WQLinear_GEMV``,
  ``calculate_zeros_width``; GPTQModel ``gemv_awq.py`` registers the same): ``qweight``
  ``I32 [out, in/8]``, ``qzeros`` ``I32 [out, width]``, ``scales`` ``F16 [out, width*8]``, where
  ``width`` is ``ceil(in/group_size / 8)`` rounded up to a multiple of 1 (group_size >= 128), 2
  (64) or 4 (32); GEMV has no layout for other group sizes.

Other AWQ versions (``gemv_fast``, ``marlin``, ``exllama``, ``ipex``) and GPTQ checkpoint formats
(``gptq_v2``, ``marlin``, ...) pack differently and are refused. Modules named by
``modules_to_not_convert`` keep a plain ``.weight``; one of them stored packed is refused.

Errors: :class:`~registry.errors.InvalidBaseModel` reason ``bad_quantization``: bits, group size,
version or format not one of the above; a packed module missing a companion (``qweight``,
``qzeros``, ``scales``, GPTQ ``g_idx``), also holding a plain ``.weight``, with a companion of the
wrong dtype or rank, or whose companions disagree on its in/out features.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from registry.errors import InvalidBaseModel

TensorSpec = tuple[str, tuple[int, ...]]
#: (in_features, out_features, expected 2-D shape of each companion)
Layout = tuple[int, int, dict[str, tuple[int, ...]]]

GPTQ_BITS = frozenset({2, 3, 4, 8})
AWQ_BITS = frozenset({4})
_FLOATS = frozenset({"F16", "BF16", "F32"})
_GPTQ_PARTS = ("qweight", "qzeros", "scales", "g_idx")
_AWQ_PARTS = ("qweight", "qzeros", "scales")
_PACKED = ("qweight", "qzeros", "g_idx")  # names that only a packed module carries


def _fail(detail: str, **context: Any) -> NoReturn:
    raise InvalidBaseModel(detail, reason="bad_quantization", context=context)


def _int(qc: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = qc.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _settings(qc: Mapping[str, Any], allowed: frozenset[int]) -> tuple[int, int]:
    bits, group = _int(qc, "bits", "w_bit"), _int(qc, "group_size", "q_group_size")
    if bits not in allowed:
        _fail(
            "unsupported bits for this quantization",
            method=qc["quant_method"],
            bits=bits if bits is not None else str(qc.get("bits", qc.get("w_bit")))[:32],
            supported=sorted(allowed),
        )
    if group is None or (group < 1 and group != -1):
        _fail("quantization_config needs group_size (-1 or positive)", method=qc["quant_method"])
    return bits, group


def _packs(n: int, bits: int, what: str, tensor: str) -> int:
    """``n`` values of ``bits`` bits in int32 words; refused when they do not fill whole words."""
    if n * bits % 32:
        _fail(f"{what} does not pack into int32 words", tensor=tensor, features=n, bits=bits)
    return n * bits // 32


def _gptq(bits: int, group: int) -> Callable[[str, dict[str, TensorSpec]], Layout]:
    def layout(module: str, parts: dict[str, TensorSpec]) -> Layout:
        rows, out_f = parts["qweight"][1]
        if rows * 32 % bits:
            _fail("qweight rows do not unpack to whole features", tensor=f"{module}.qweight")
        in_f = rows * 32 // bits
        groups = 1 if group == -1 else math.ceil(in_f / group)
        words = _packs(out_f, bits, "out_features", f"{module}.qzeros")
        return (
            in_f,
            out_f,
            {
                "qzeros": (groups, words),
                "scales": (groups, out_f),
                "g_idx": (in_f,),
            },
        )

    return layout


def _awq_gemm(bits: int, group: int) -> Callable[[str, dict[str, TensorSpec]], Layout]:
    def layout(module: str, parts: dict[str, TensorSpec]) -> Layout:
        in_f, words = parts["qweight"][1]
        out_f = words * 32 // bits
        size = in_f if group == -1 else group
        if in_f % size:
            _fail("in_features not a multiple of group_size", tensor=f"{module}.qweight")
        return in_f, out_f, {"qzeros": (in_f // size, words), "scales": (in_f // size, out_f)}

    return layout


def _gemv_zeros_width(in_f: int, group: int, module: str) -> int:
    """AutoAWQ's ``calculate_zeros_width`` (``in_f`` is a multiple of ``group`` here)."""
    multiplier = 1 if group >= 128 else {64: 2, 32: 4}.get(group)
    if multiplier is None:
        _fail("AWQ GEMV has no layout for this group_size", tensor=module, group_size=group)
    width = math.ceil(in_f // group / 8)
    return math.ceil(width / multiplier) * multiplier


def _awq_gemv(bits: int, group: int) -> Callable[[str, dict[str, TensorSpec]], Layout]:
    def layout(module: str, parts: dict[str, TensorSpec]) -> Layout:
        out_f, words = parts["qweight"][1]
        in_f = words * 32 // bits
        size = in_f if group == -1 else group
        if in_f % size:
            _fail("in_features not a multiple of group_size", tensor=f"{module}.qweight")
        width = _gemv_zeros_width(in_f, size, module)
        return in_f, out_f, {"qzeros": (out_f, width), "scales": (out_f, width * 32 // bits)}

    return layout


def _scheme(
    qc: Mapping[str, Any],
) -> tuple[tuple[str, ...], Callable[[str, dict[str, TensorSpec]], Layout]]:
    if qc["quant_method"] == "gptq":
        fmt = qc.get("checkpoint_format", "gptq")
        if fmt != "gptq":
            _fail("GPTQ checkpoint_format not supported", checkpoint_format=str(fmt)[:32])
        if qc.get("pack_dtype", "int32") not in ("int32", "torch.int32"):
            _fail("GPTQ pack_dtype not supported", pack_dtype=str(qc.get("pack_dtype"))[:32])
        return _GPTQ_PARTS, _gptq(*_settings(qc, GPTQ_BITS))
    version = qc.get("version", "gemm")
    builders = {"gemm": _awq_gemm, "gemv": _awq_gemv}
    if not isinstance(version, str) or version.lower() not in builders:
        _fail("AWQ version not supported (gemm, gemv)", version=str(version)[:32])
    return _AWQ_PARTS, builders[version.lower()](*_settings(qc, AWQ_BITS))


def _not_converted(qc: Mapping[str, Any]) -> list[str]:
    skip = qc.get("modules_to_not_convert")
    if skip is None:
        return []
    if not isinstance(skip, list) or not all(isinstance(s, str) for s in skip):
        _fail("modules_to_not_convert is not a list of module names")
    return list(skip)


def _check(module: str, parts: dict[str, TensorSpec], layout: Layout) -> None:
    _, _, expected = layout
    for part, shape in expected.items():
        found = parts[part][1]
        if found != shape:
            _fail(
                "packed tensors disagree on the module's features",
                tensor=f"{module}.{part}",
                expected=list(shape),
                found=list(found),
            )


def packed_linear_tensors(
    qc: Mapping[str, Any], tensors: Mapping[str, TensorSpec]
) -> dict[str, TensorSpec]:
    """``tensors`` with each GPTQ/AWQ-packed module given its logical ``<m>.weight`` and its
    packed buffers dropped (``qc``: ``quantization_config`` with ``quant_method`` gptq or awq).

    Raises:
        InvalidBaseModel: ``bad_quantization`` (module docstring).
    """
    names, layout_of = _scheme(qc)
    skip = _not_converted(qc)
    modules = sorted(
        {name.rsplit(".", 1)[0] for name in tensors if name.rsplit(".", 1)[-1] in _PACKED}
    )
    out = dict(tensors)
    for module in modules:
        parts: dict[str, TensorSpec] = {}
        for part in names:
            spec = tensors.get(f"{module}.{part}")
            if spec is None:
                _fail("packed module is missing a tensor", tensor=f"{module}.{part}")
            floats = part == "scales"
            rank = 1 if part == "g_idx" else 2
            if (spec[0] in _FLOATS) != floats or (not floats and spec[0] != "I32"):
                _fail("packed tensor has the wrong dtype", tensor=f"{module}.{part}")
            if len(spec[1]) != rank:
                _fail("packed tensor has the wrong rank", tensor=f"{module}.{part}")
            parts[part] = spec
        if f"{module}.weight" in tensors:
            _fail("packed module also has a plain weight", tensor=f"{module}.weight")
        if any(entry in module for entry in skip):
            _fail("module in modules_to_not_convert is packed", tensor=f"{module}.qweight")
        layout = layout_of(module, parts)
        in_f, out_f, _ = layout
        if in_f < 1 or out_f < 1:
            _fail("packed module has no features", tensor=f"{module}.qweight")
        _check(module, parts, layout)
        bias = tensors.get(f"{module}.bias")
        if bias is not None and bias[1] != (out_f,):
            _fail("bias does not match out_features", tensor=f"{module}.bias")
        for part in names:
            out.pop(f"{module}.{part}")
        out[f"{module}.weight"] = (parts["scales"][0], (out_f, in_f))
    return out
