"""The AdaMSS checks its table cannot express (see :mod:`registry.validation.methods.peft_misc`).

peft's ``AdamssLayer.update_layer`` clusters the ``out`` rows of the base weight's SVD into
``K = min(num_subspaces, out)`` subspaces (k-means: the rows each gets depend on the weights) and
saves, for subspace ``i`` with ``n_i`` rows and rank ``k_i``, ``adamss_A.<i>`` ``[min(k_i, R), R]``
and ``adamss_B.<i>`` ``[n_i, k_i]``, where ``R`` is ``adamss_newB``'s rank and
``k_i = min(n_i, subspace_rank)`` (at most that with ``use_dynamic_rank``). The sizes ``n_i`` are
data, but they partition the rows: they sum to ``out``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from registry.errors import IncompatibleBase, InconsistentAdapter

if TYPE_CHECKING:  # tables load with the config module: the validator's own imports come later
    from registry.validation.manifest import BaseManifest
    from registry.validation.safetensors import TensorInfo

PEFT_PREFIX = "base_model.model."

_PART = re.compile(re.escape(PEFT_PREFIX) + r"(.+)\.adamss_(A|B|newB)(?:\.([0-9]+))?")


def _fail(reason: str, detail: str, base: bool = False, **context: Any) -> NoReturn:
    error = IncompatibleBase if base else InconsistentAdapter
    raise error(detail, reason=reason, context=context)


def _int(cfg: Any, key: str, default: int) -> int:
    value = cfg.raw.get(key)
    return default if value is None else int(value)  # type-checked by the table's dims


def check_adamss(
    cfg: Any, tensors: Mapping[str, TensorInfo], base: BaseManifest | None, found: Any
) -> None:
    """Per module: subspaces ``0..K-1`` for ``A`` and ``B`` alike, ``K = min(num_subspaces, out)``,
    ``B`` rows summing to ``out`` (the base's, with a base), and each subspace's ranks.

    Raises:
        InconsistentAdapter: ``missing_tensor``, ``unexpected_tensor``, ``shape_mismatch``.
        IncompatibleBase: ``shape_mismatch`` (the rows do not add up to the base's ``out``).
    """
    modules: dict[str, dict[tuple[str, int], TensorInfo]] = {}
    for name, info in tensors.items():
        match = _PART.fullmatch(name)
        if match is not None:
            module, part, index = match.groups()
            modules.setdefault(module, {})[(part, int(index or 0))] = info
    subspaces, rank = _int(cfg, "num_subspaces", 5), _int(cfg, "subspace_rank", 1)
    dynamic = cfg.raw.get("use_dynamic_rank") is True
    for module, parts in sorted(modules.items()):
        _check_module(module, parts, base, subspaces, rank, dynamic)


def _check_module(
    module: str,
    parts: Mapping[tuple[str, int], TensorInfo],
    base: BaseManifest | None,
    subspaces: int,
    rank: int,
    dynamic: bool,
) -> None:
    from registry.validation.checks_base import base_tensor  # here: an import cycle

    bs = sorted(i for part, i in parts if part == "B")
    out = sum(parts[("B", i)].shape[0] for i in bs)
    weight = None if base is None else base_tensor(base, module + ".weight")
    if weight is not None and out != weight[1][0]:
        what = f"adamss_B rows sum to {out}, the base has {weight[1][0]} outputs"
        _fail("shape_mismatch", what, True, module=module, expected=weight[1][0], actual=out)
    expected = min(subspaces, weight[1][0] if weight is not None else out)
    for part in ("A", "B"):
        for i in range(expected):
            if (part, i) not in parts:
                name = f"{PEFT_PREFIX}{module}.adamss_{part}.{i}"
                _fail("missing_tensor", f"adamss_{part}.{i} missing", module=module, tensor=name)
    for (part, i), info in sorted(parts.items()):
        if part != "newB" and i >= expected:
            what = f"{expected} subspaces (min(num_subspaces, out)), not {i + 1}"
            _fail("unexpected_tensor", what, module=module, tensor=info.name)
    svd_rank = parts[("newB", 0)].shape[0] if ("newB", 0) in parts else None
    for i in range(expected):
        _check_subspace(module, parts[("A", i)], parts[("B", i)], svd_rank, rank, dynamic)


def _check_subspace(
    module: str, a: TensorInfo, b: TensorInfo, svd_rank: int | None, rank: int, dynamic: bool
) -> None:
    rows, k = b.shape
    want = min(rows, rank)
    if k != want and not (dynamic and 1 <= k <= want):
        what = f"adamss_B's rank {k}: min(rows {rows}, subspace_rank {rank}) expected"
        _fail("shape_mismatch", what, module=module, tensor=b.name, expected=want, actual=k)
    if svd_rank is not None and a.shape[0] != min(k, svd_rank):
        what = f"adamss_A's rows {a.shape[0]}: min(B's rank {k}, SVD rank {svd_rank}) expected"
        expected = min(k, svd_rank)
        _fail(
            "shape_mismatch",
            what,
            module=module,
            tensor=a.name,
            expected=expected,
            actual=a.shape[0],
        )
