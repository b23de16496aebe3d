"""The BITFIT checks its table cannot express (see
:mod:`registry.validation.methods.registry_tables`)."""

from __future__ import annotations

from collections.abc import Mapping

from registry.errors import IncompatibleBase, InconsistentAdapter
from registry.validation.checks_base import base_tensor
from registry.validation.layout import PEFT_PREFIX
from registry.validation.manifest import BaseManifest
from registry.validation.safetensors import TensorInfo

_FLOAT_DTYPES = frozenset({"F16", "BF16", "F32", "F64", "F8_E4M3", "F8_E5M2"})


def check_bias_deltas(tensors: Mapping[str, TensorInfo], base: BaseManifest | None) -> None:
    """What the BITFIT table cannot say: each delta is a 1-D float vector, and its module has a
    bias in the base (run after :func:`~registry.validation.methods.engine.check_method`).

    Raises:
        InconsistentAdapter: ``dtype_mismatch``, ``shape_mismatch``.
        IncompatibleBase: ``missing_bias``.
    """
    for name, info in sorted(tensors.items()):
        module = name.removeprefix(PEFT_PREFIX).removesuffix(".bias")
        context = {"tensor": name, "module": module}
        if info.dtype not in _FLOAT_DTYPES:
            raise InconsistentAdapter(
                f"{name}: a bias delta must be floating point, got {info.dtype}",
                reason="dtype_mismatch",
                context={**context, "actual": info.dtype},
            )
        if len(info.shape) != 1:
            raise InconsistentAdapter(
                f"{name}: a bias delta must be 1-D, got {list(info.shape)}",
                reason="shape_mismatch",
                context={**context, "actual": list(info.shape)},
            )
        if base is not None and base_tensor(base, module + ".bias") is None:
            raise IncompatibleBase(
                f"{module} has no bias in the base model: nothing to add {name} to",
                reason="missing_bias",
                context=context,
            )
