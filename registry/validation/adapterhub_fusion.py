"""AdapterFusion layers saved by AdapterHub's ``adapters`` library
(``model.save_adapter_fusion(dir, "a,b", use_safetensors=True)``): ``adapter_fusion_config.json``
- ``{"adapter_names": [...], "config": {...}, "hidden_size", "model_class", "model_name",
"model_type", "name": "a,b", "version"}`` - and ``model_adapter_fusion.safetensors``.

Tensors, from ``adapters`` 1.3 (``methods/modeling.py``: ``BertFusion``; ``bottleneck.py`` adds
one per adapted position, ``...layer.<i>.output`` and/or ``...layer.<i>.attention.output``), under
``<position>.adapter_fusion_layer.<name>``: ``query.weight [H, H]`` and ``query.bias [H]`` with
``query``, ``key.weight``/``key.bias`` with ``key``, ``value.weight [H, H]`` (no bias) with
``value``, and ``dense.weight [1, H]``, ``dense.bias [1]`` when none of the three is on.

A fusion composes the adapters it names: the registry lists them on the report but cannot check
that they are registered (they are separate uploads).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NoReturn

from registry.errors import InconsistentAdapter, InvalidAdapterConfig
from registry.validation.adapterhub import check_base, check_parts, layer_of
from registry.validation.manifest import BaseManifest
from registry.validation.safetensors import TensorInfo

FUSION_CONFIG = "adapter_fusion_config.json"
FUSION_WEIGHTS = "model_adapter_fusion.safetensors"
_KEY = re.compile(r"(?P<path>.+)\.adapter_fusion_layer\.(?P<name>[^.]+)\.(?P<part>.+)\Z")
_NAME = re.compile(r"[^.,\s]{1,128}\Z")
_POSITIONS = (".attention.output", ".output")


def _bad(detail: str, field: str) -> NoReturn:
    raise InvalidAdapterConfig(
        detail, reason="schema", context={"file": FUSION_CONFIG, "field": field}
    )


def _inconsistent(reason: str, detail: str, **context: Any) -> NoReturn:
    raise InconsistentAdapter(detail, reason=reason, context=context)


def is_fusion_config(raw: Mapping[str, Any]) -> bool:
    return "adapter_names" in raw and isinstance(raw.get("config"), dict)


def fusion_names(raw: Mapping[str, Any]) -> list[str]:
    """The adapters the fusion composes (the config's ``name`` is them joined by commas).

    Raises:
        InvalidAdapterConfig: ``schema``.
    """
    names = raw.get("adapter_names")
    if (
        not isinstance(names, list)
        or len(names) < 2
        or not all(isinstance(n, str) and _NAME.match(n) for n in names)
        or len(set(names)) != len(names)
    ):
        _bad("adapter_names must list two or more distinct adapter names", "adapter_names")
    if raw.get("name") != ",".join(names):
        _bad("name must be the adapter_names joined by commas", "name")
    return list(names)


def _expected(cfg: Mapping[str, Any], hidden: int) -> dict[str, tuple[int, ...]]:
    parts: dict[str, tuple[int, ...]] = {}
    for flag in ("query", "key"):
        if cfg.get(flag):
            parts.update({f"{flag}.weight": (hidden, hidden), f"{flag}.bias": (hidden,)})
    if cfg.get("value"):
        parts["value.weight"] = (hidden, hidden)
    if not parts:
        parts = {"dense.weight": (1, hidden), "dense.bias": (1,)}
    return parts


def check_fusion(
    raw: Mapping[str, Any], tensors: Mapping[str, TensorInfo], base: BaseManifest | None
) -> list[str]:
    """Check the fusion layers against the config (and the base); return the positions.

    Raises:
        InvalidAdapterConfig: ``schema``.
        InconsistentAdapter: ``unexpected_tensor``, ``missing_tensor``, ``shape_mismatch``.
        IncompatibleBase: ``model_type_mismatch``, ``shape_mismatch``, ``missing_modules``.
    """
    fusion_names(raw)
    name, hidden = raw["name"], raw.get("hidden_size")
    if not isinstance(hidden, int) or isinstance(hidden, bool) or hidden <= 0:
        _bad("hidden_size must be a positive integer", "hidden_size")
    groups: dict[str, dict[str, TensorInfo]] = {}
    for key, info in tensors.items():
        match = _KEY.match(key)
        if match is None or match["name"] != name:
            _inconsistent(
                "unexpected_tensor", f"{key} is not a layer of fusion {name!r}", tensor=key
            )
        if layer_of(match["path"]) is None or not match["path"].endswith(_POSITIONS):
            _inconsistent(
                "unexpected_tensor", f"{key}: not at an adapter position of a layer", tensor=key
            )
        groups.setdefault(match["path"], {})[match["part"]] = info
    if not groups:
        _inconsistent("missing_tensor", f"fusion {name!r} has no layer", tensor=FUSION_WEIGHTS)
    expected = _expected(raw["config"], hidden)
    for path, parts in sorted(groups.items()):
        check_parts(path, parts, expected)
    _check_positions(groups)
    if base is not None:
        check_base(raw, hidden, groups, base)
    return sorted(groups)


def _check_positions(groups: Mapping[str, Any]) -> None:
    """Each layer has a fusion at the same positions (those all its adapters have)."""
    layers: dict[int, set[str]] = {}
    for path in groups:
        kind = "attention" if path.endswith(".attention.output") else "output"
        layers.setdefault(layer_of(path) or 0, set()).add(kind)
    every = set.union(*layers.values())
    for layer, kinds in sorted(layers.items()):
        for kind in sorted(every - kinds):
            _inconsistent(
                "missing_tensor",
                f"layer {layer} has no {kind} fusion layer",
                layer=layer,
                position=kind,
            )
