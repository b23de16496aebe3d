"""GPTQ and AWQ checkpoints built from a plain tiny model, as the libraries would save them.

No GPTQ/AWQ library runs here (they need CUDA kernels), so this quantizes each decoder linear of
a saved unquantized model for real (min-max per group and output channel, asymmetric or
symmetric) and packs the ints into the libraries' published layouts (the sources cited in
``registry/validation/quantized_linear.py``):

* GPTQ (AutoGPTQ ``QuantLinear.pack``): ints ``[in, out]`` packed along ``in`` as a little-endian
  bit stream of 32-value blocks (for 2/4/8 bits value ``j`` of a word sits at ``bits * j``; the
  3-bit scheme's carries across words are the same stream); zeros stored minus one and packed
  along ``out`` the same way; ``g_idx[i]`` the group of input ``i`` (permuted under
  ``desc_act``).
* AWQ GEMM (``WQLinear_GEMM.from_linear``): ints ``[in, out]`` packed along ``out``, 8 per word in
  the interleaved order ``0 2 4 6 1 3 5 7``; zeros packed the same way (no offset).
* AWQ GEMV (``WQLinear_GEMV.from_linear``): ints ``[out, in]`` packed along ``in`` in plain order;
  zeros ``[out, groups]`` and scales padded to ``calculate_zeros_width``.

:func:`gptq_dequantize` unpacks a GPTQ module back, so a test can check the round trip.
``config.json`` gets a ``quantization_config`` shaped like the one each library writes.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from safetensors.torch import load_file, save_file

U32 = npt.NDArray[np.uint32]
F32 = npt.NDArray[np.float32]
Tensors = dict[str, torch.Tensor]
LINEAR = re.compile(r"model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj\.weight\Z")
AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)


def rewrite(base: Path, out: Path, edit: Callable[[dict[str, torch.Tensor]], None]) -> Path:
    """Copy checkpoint ``base`` to ``out`` with ``edit`` applied to its tensors."""
    shutil.copytree(base, out)
    tensors = load_file(out / "model.safetensors")
    edit(tensors)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


def group_index(in_f: int, group: int, *, desc_act: bool = False) -> npt.NDArray[np.int64]:
    """Each input's group; under act-order, groups follow a (seeded) permutation of the inputs."""
    size = in_f if group == -1 else group
    rank = np.arange(in_f)
    if desc_act:
        rank = np.argsort(np.random.default_rng(in_f).permutation(in_f))
    return rank // size


def quantize(
    weight: F32, bits: int, g_idx: npt.NDArray[np.int64], *, sym: bool
) -> tuple[U32, F32, U32]:
    """Ints ``[out, in]``, scales and zeros ``[groups, out]`` (min-max per group and row)."""
    out_f = weight.shape[0]
    groups, maxq = int(g_idx.max()) + 1, 2**bits - 1
    scales = np.zeros((groups, out_f), np.float32)
    zeros = np.zeros((groups, out_f), np.uint32)
    ints = np.zeros(weight.shape, np.uint32)
    for g in range(groups):
        block = weight[:, g_idx == g]
        if sym:
            scale = np.maximum(np.abs(block).max(axis=1), 1e-8) * 2 / maxq
            zero = np.full(out_f, (maxq + 1) // 2, np.float32)
        else:
            low, high = np.minimum(block.min(axis=1), 0), np.maximum(block.max(axis=1), 0)
            scale = np.maximum(high - low, 1e-8) / maxq
            zero = np.round(-low / scale)
        scale = scale.astype(np.float16).astype(np.float32)  # stored as F16
        q = np.clip(np.round(block / scale[:, None]) + zero[:, None], 0, maxq)
        ints[:, g_idx == g] = q.astype(np.uint32)
        scales[g], zeros[g] = scale, zero.astype(np.uint32)
    return ints, scales, zeros


def pack_stream(values: U32, bits: int) -> U32:
    """Pack along axis 0 as a little-endian bit stream of int32 words (GPTQ's layout)."""
    n = values.shape[0]
    words = np.zeros((n * bits // 32, *values.shape[1:]), np.uint32)
    for i in range(n):
        for b in range(bits):
            bit = (values[i] >> np.uint32(b)) & np.uint32(1)
            pos = i * bits + b
            words[pos // 32] |= bit << np.uint32(pos % 32)
    return words


def unpack_stream(words: U32, bits: int, n: int) -> U32:
    values = np.zeros((n, *words.shape[1:]), np.uint32)
    for i in range(n):
        for b in range(bits):
            pos = i * bits + b
            bit = (words[pos // 32] >> np.uint32(pos % 32)) & np.uint32(1)
            values[i] |= bit << np.uint32(b)
    return values


def pack_columns(values: U32, order: tuple[int, ...]) -> U32:
    """Pack 4-bit values along axis 1, 8 per word, value ``order[i]`` at bits ``4 i`` (AWQ)."""
    words = np.zeros((values.shape[0], math.ceil(values.shape[1] / 8)), np.uint32)
    for col in range(words.shape[1]):
        for i, src in enumerate(order):
            if col * 8 + src < values.shape[1]:
                words[:, col] |= values[:, col * 8 + src] << np.uint32(4 * i)
    return words


def _i32(values: U32) -> torch.Tensor:
    return torch.from_numpy(values.view(np.int32).copy())


def _f16(values: F32) -> torch.Tensor:
    return torch.from_numpy(values.astype(np.float16))


def gptq_module(weight: F32, bits: int, group: int, *, sym: bool, desc_act: bool) -> Tensors:
    g_idx = group_index(weight.shape[1], group, desc_act=desc_act)
    ints, scales, zeros = quantize(weight, bits, g_idx, sym=sym)
    qzeros = pack_stream(np.ascontiguousarray((zeros - 1).T), bits).T  # AutoGPTQ: zeros - 1
    return {
        "qweight": _i32(pack_stream(np.ascontiguousarray(ints.T), bits)),
        "qzeros": _i32(np.ascontiguousarray(qzeros)),
        "scales": _f16(scales),
        "g_idx": torch.from_numpy(g_idx.astype(np.int32)),
    }


def gptq_dequantize(parts: Tensors, bits: int) -> F32:
    """The ``[out, in]`` weight a GPTQ module's packed tensors stand for."""
    qweight = parts["qweight"].numpy().view(np.uint32)
    qzeros = parts["qzeros"].numpy().view(np.uint32)
    scales, g_idx = parts["scales"].numpy().astype(np.float32), parts["g_idx"].numpy()
    out_f = qweight.shape[1]
    ints = unpack_stream(qweight, bits, len(g_idx)).astype(np.float32)  # [in, out]
    zeros = unpack_stream(np.ascontiguousarray(qzeros.T), bits, out_f).T.astype(np.float32) + 1
    return ((ints - zeros[g_idx]) * scales[g_idx]).T  # type: ignore[no-any-return]


def awq_module(weight: F32, group: int, *, version: str) -> Tensors:
    g_idx = group_index(weight.shape[1], group)
    ints, scales, zeros = quantize(weight, 4, g_idx, sym=False)
    if version == "gemm":
        return {
            "qweight": _i32(pack_columns(np.ascontiguousarray(ints.T), AWQ_ORDER)),
            "qzeros": _i32(pack_columns(zeros, AWQ_ORDER)),
            "scales": _f16(scales),
        }
    size = weight.shape[1] if group == -1 else group
    multiplier = 1 if size >= 128 else {64: 2, 32: 4}[size]
    width = math.ceil(math.ceil(len(scales) / 8) / multiplier) * multiplier
    padded = np.zeros((weight.shape[0], width * 8), np.float32)
    padded[:, : len(scales)] = scales.T
    qzeros = np.zeros((weight.shape[0], width), np.uint32)
    packed = pack_columns(np.ascontiguousarray(zeros.T), tuple(range(8)))
    qzeros[:, : packed.shape[1]] = packed
    return {
        "qweight": _i32(pack_columns(ints, tuple(range(8)))),
        "qzeros": _i32(qzeros),
        "scales": _f16(padded),
    }


def _write(
    plain: Path, out: Path, qc: dict[str, Any], pack: Callable[[str, F32], Tensors | None]
) -> Path:
    """``plain`` with each decoder linear ``pack``-ed (None: kept), other tensors in F16."""
    out.mkdir(parents=True)
    tensors: Tensors = {}
    for name, tensor in load_file(plain / "model.safetensors").items():
        module = name.removesuffix(".weight")
        packed = pack(module, tensor.float().numpy()) if LINEAR.match(name) else None
        if packed is None:
            tensors[name] = tensor.to(torch.float16)
        else:
            tensors.update({f"{module}.{part}": value for part, value in packed.items()})
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((plain / "config.json").read_text())
    config["dtype"] = "float16"
    config["quantization_config"] = qc
    (out / "config.json").write_text(json.dumps(config, indent=2))
    return out


def gptq_checkpoint(
    plain: Path,
    out: Path,
    *,
    bits: int = 4,
    group_size: int = 32,
    desc_act: bool = False,
    sym: bool = True,
) -> Path:
    """``plain`` as AutoGPTQ/optimum save a GPTQ model (``checkpoint_format`` gptq)."""
    qc = {
        "quant_method": "gptq",
        "bits": bits,
        "group_size": group_size,
        "desc_act": desc_act,
        "sym": sym,
        "damp_percent": 0.01,
        "true_sequential": True,
        "static_groups": False,
        "checkpoint_format": "gptq",
        "block_name_to_quantize": "model.layers",
        "module_name_preceding_first_block": ["model.embed_tokens"],
        "dataset": "c4",
        "model_seqlen": 64,
        "use_exllama": True,
    }

    def pack(module: str, weight: F32) -> Tensors:
        return gptq_module(weight, bits, group_size, sym=sym, desc_act=desc_act)

    return _write(plain, out, qc, pack)


def awq_checkpoint(
    plain: Path,
    out: Path,
    *,
    version: str = "gemm",
    group_size: int = 32,
    not_convert: list[str] | None = None,
) -> Path:
    """``plain`` as AutoAWQ's ``save_quantized`` writes it (``modules_to_not_convert`` kept)."""
    qc = {
        "quant_method": "awq",
        "bits": 4,
        "group_size": group_size,
        "zero_point": True,
        "version": version,
        "modules_to_not_convert": not_convert,
    }

    def pack(module: str, weight: F32) -> Tensors | None:
        if any(skip in module for skip in not_convert or []):
            return None
        return awq_module(weight, group_size, version=version)

    return _write(plain, out, qc, pack)
