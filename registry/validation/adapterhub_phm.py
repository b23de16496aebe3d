"""Compacter / Compacter++ (AdapterHub bottleneck adapters with ``phm_layer: true``): the
expected tensors of each PHM (parameterized hypercomplex multiplication) projection and of the
adapter's shared parameters, from the config alone.

Rules, from ``adapters`` 1.3 (``methods/modeling.py``: ``PHMLayer``, ``init_shared_parameters``;
``model_mixin.py`` keeps the shared ones at ``<base prefix>.shared_parameters.<name>``). With
``n = phm_dim``, ``r = phm_rank``, a projection from ``i`` to ``o`` features (down: hidden ->
width, up: width -> hidden; ``i`` and ``o`` divisible by ``n``):

- per projection, unless ``shared_W_phm``: ``W_left [n, i/n, r]`` and ``W_right [n, r, o/n]``
  (``factorized_phm_W``) or ``W [n, i/n, o/n]``;
- per projection, unless ``shared_phm_rule``: ``phm_rule_left [n, n, 1]`` and
  ``phm_rule_right [n, 1, n]`` (``factorized_phm_rule``) or ``phm_rule [n, n, n]``;
- per projection with ``phm_bias``: ``b [o]``;
- shared, with ``shared_W_phm`` (width ``hidden // reduction_factor``): ``W_down_left
  [n, hidden/n, r]``, ``W_down_right [n, r, width/n]``, ``W_up_left [n, width/n, r]``,
  ``W_up_right [n, r, hidden/n]`` (factorized) or ``W_down [n, hidden/n, width/n]``,
  ``W_up [n, width/n, hidden/n]``;
- shared, with ``shared_phm_rule``: ``phm_rule_left``/``phm_rule_right`` or ``phm_rule`` as above.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NoReturn

from registry.errors import InvalidAdapterConfig

#: ``<prefix>.shared_parameters.<name>.<param>``
SHARED_KEY = re.compile(
    r"(?P<prefix>(?:.+\.)?)shared_parameters\.(?P<name>[^.]+)\.(?P<part>[^.]+)\Z"
)
_INTS = ("phm_dim", "phm_rank")


def _bad(detail: str) -> NoReturn:
    raise InvalidAdapterConfig(
        detail, reason="schema", context={"file": "adapter_config.json", "field": "config"}
    )


def phm_dims(cfg: Mapping[str, Any]) -> tuple[int, int]:
    """``(phm_dim, phm_rank)``, both positive integers.

    Raises:
        InvalidAdapterConfig: ``schema``.
    """
    values = []
    for key in _INTS:
        value = cfg.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            _bad(f"{key} must be a positive integer")
        values.append(value)
    return values[0], values[1]


def _per_axis(features: int, n: int, what: str) -> int:
    if features % n:
        _bad(f"{what} ({features}) is not divisible by phm_dim ({n})")
    return features // n


def _rule(n: int) -> Mapping[str, tuple[int, ...]]:
    return {"phm_rule": (n, n, n)}


def _factor_rule(n: int) -> Mapping[str, tuple[int, ...]]:
    return {"phm_rule_left": (n, n, 1), "phm_rule_right": (n, 1, n)}


def _projection(
    cfg: Mapping[str, Any], n: int, rank: int, inputs: int, outputs: int
) -> dict[str, tuple[int, ...]]:
    i, o = _per_axis(inputs, n, "input width"), _per_axis(outputs, n, "output width")
    parts: dict[str, tuple[int, ...]] = {}
    if not cfg.get("shared_W_phm"):
        if cfg.get("factorized_phm_W"):
            parts.update({"W_left": (n, i, rank), "W_right": (n, rank, o)})
        else:
            parts["W"] = (n, i, o)
    if not cfg.get("shared_phm_rule"):
        parts.update(_factor_rule(n) if cfg.get("factorized_phm_rule") else _rule(n))
    if cfg.get("phm_bias"):
        parts["b"] = (outputs,)
    return parts


def phm_parts(
    cfg: Mapping[str, Any], width: int, hidden: int, down: int
) -> dict[str, tuple[int, ...]]:
    """The tensors of one adapted position (``adapter_down.<down>.*``, ``adapter_up.*``)."""
    n, rank = phm_dims(cfg)
    parts = {
        f"adapter_down.{down}.{k}": v for k, v in _projection(cfg, n, rank, hidden, width).items()
    }
    parts.update(
        {f"adapter_up.{k}": v for k, v in _projection(cfg, n, rank, width, hidden).items()}
    )
    return parts


def shared_parts(cfg: Mapping[str, Any], hidden: int) -> dict[str, tuple[int, ...]]:
    """The adapter's ``shared_parameters`` (empty when nothing is shared)."""
    n, rank = phm_dims(cfg)
    parts: dict[str, tuple[int, ...]] = {}
    if cfg.get("shared_W_phm"):
        factor = cfg.get("reduction_factor")
        if not isinstance(factor, int) or isinstance(factor, bool) or factor <= 0:
            _bad("shared_W_phm needs one integer reduction_factor for every layer")
        width = hidden // factor
        h, w = _per_axis(hidden, n, "hidden size"), _per_axis(width, n, "bottleneck width")
        if cfg.get("factorized_phm_W"):
            parts.update(
                {
                    "W_down_left": (n, h, rank),
                    "W_down_right": (n, rank, w),
                    "W_up_left": (n, w, rank),
                    "W_up_right": (n, rank, h),
                }
            )
        else:
            parts.update({"W_down": (n, h, w), "W_up": (n, w, h)})
    if cfg.get("shared_phm_rule"):
        parts.update(_factor_rule(n) if cfg.get("factorized_phm_rule") else _rule(n))
    return parts
