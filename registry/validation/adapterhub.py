"""Bottleneck adapter modules saved by AdapterHub's ``adapters`` library (Houlsby, Pfeiffer,
parallel), validated from their headers like every other method.

Files (``model.save_adapter(dir, name, use_safetensors=True)``): ``adapter_config.json`` -
``{"config": {...}, "hidden_size", "model_class", "model_name", "model_type", "name",
"version"}`` - and ``adapter.safetensors``; a prediction head adds ``head_config.json`` and
``model_head.safetensors``. The default ``pytorch_adapter.bin`` is a pickle and is refused
(``forbidden_file`` / ``pickle``; ``adapter-registry adapters convert DIR`` converts it locally).

Tensors, per adapted position ``<path>`` (``...layer.<i>.output`` for the output adapter,
``...layer.<i>.attention.output`` for the multi-head one):
``<path>.adapters.<name>.adapter_down.<j>.weight`` ``[hidden // reduction_factor, hidden]``
(``j`` is 1 after a ``ln_before`` norm, which is then ``adapter_down.0.weight|bias`` ``[hidden]``,
else 0) and ``.bias``, ``adapter_up.weight``
``[hidden, hidden // reduction_factor]`` and ``.bias``, ``adapter_norm_after.weight|bias``
``[hidden]`` with ``ln_after``, ``gate.weight`` ``[1, hidden]`` and ``gate.bias`` ``[1]`` with
``use_gating``. ``<name>`` is the config's ``name``.

The method (``peft_type``) is named from the config: ``ADAPTERHUB_PAR_BN`` (``is_parallel``),
``ADAPTERHUB_DOUBLE_SEQ_BN`` (``mh_adapter`` and ``output_adapter``: Houlsby),
``ADAPTERHUB_SEQ_BN`` (Pfeiffer); with ``phm_layer`` (:mod:`registry.validation.adapterhub_phm`)
``ADAPTERHUB_COMPACTER`` (Houlsby positions) or ``ADAPTERHUB_COMPACTER_PP`` (one position), whose
PHM tensors replace ``weight``/``bias`` and whose shared parameters sit at
``<prefix>.shared_parameters.<name>.*``; ``architecture: prefix_tuning`` is
``ADAPTERHUB_PREFIX_TUNING`` (:mod:`registry.validation.adapterhub_prefix`). AdapterFusion
(:mod:`registry.validation.adapterhub_fusion`) is ``ADAPTERHUB_FUSION``. Others (parallel PHM,
LoRA/IA3/prompt tuning from ``adapters``, compositions) are refused as ``unknown_peft_type`` /
``not_validated``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NoReturn

from registry.errors import (
    IncompatibleBase,
    InconsistentAdapter,
    InvalidAdapterConfig,
    UnknownPeftType,
)
from registry.validation.adapterhub_phm import SHARED_KEY, phm_parts, shared_parts
from registry.validation.manifest import BaseManifest
from registry.validation.safetensors import TensorInfo

HUB_CONFIG = "adapter_config.json"
HUB_WEIGHTS = "adapter.safetensors"
HUB_HEAD_CONFIG = "head_config.json"
HUB_HEAD_WEIGHTS = "model_head.safetensors"
HUB_TYPES: frozenset[str] = frozenset(
    {
        "ADAPTERHUB_SEQ_BN",
        "ADAPTERHUB_DOUBLE_SEQ_BN",
        "ADAPTERHUB_PAR_BN",
        "ADAPTERHUB_COMPACTER",
        "ADAPTERHUB_COMPACTER_PP",
        "ADAPTERHUB_PREFIX_TUNING",
        "ADAPTERHUB_FUSION",
    }
)
_KEY = re.compile(r"(?P<path>.+)\.adapters\.(?P<name>[^.]+)\.(?P<part>.+)\Z")
_LAYER = re.compile(r"\.(?:layer|layers|h|block|blocks)\.(\d+)\.")
_META = ("config", "model_class", "name", "version")


def _bad_config(detail: str, field: str) -> NoReturn:
    raise InvalidAdapterConfig(
        detail, reason="schema", context={"file": HUB_CONFIG, "field": field}
    )


def _inconsistent(reason: str, detail: str, **context: Any) -> NoReturn:
    raise InconsistentAdapter(detail, reason=reason, context=context)


def is_adapterhub_config(raw: Mapping[str, Any]) -> bool:
    """``adapter_config.json`` as ``adapters`` writes it (``config``, ``model_class``, ...)."""
    return all(key in raw for key in _META) and isinstance(raw.get("config"), dict)


def hub_method(raw: Mapping[str, Any]) -> str:
    """The ``peft_type`` the registry lists this adapter under.

    Raises:
        UnknownPeftType: ``not_validated`` for a kind without checks here.
    """
    cfg = raw["config"]
    if cfg.get("architecture") == "prefix_tuning":
        return "ADAPTERHUB_PREFIX_TUNING"
    if cfg.get("architecture") not in (None, "bottleneck") or (
        cfg.get("phm_layer") and cfg.get("is_parallel")
    ):
        kind = cfg.get("architecture") or "parallel_phm"
        raise UnknownPeftType(
            f"AdapterHub {kind} adapters cannot be validated yet",
            reason="not_validated",
            context={"peft_type": f"ADAPTERHUB_{str(kind).upper()}"[:64]},
        )
    if cfg.get("phm_layer"):
        double = cfg.get("mh_adapter") and cfg.get("output_adapter")
        return "ADAPTERHUB_COMPACTER" if double else "ADAPTERHUB_COMPACTER_PP"
    if cfg.get("is_parallel"):
        return "ADAPTERHUB_PAR_BN"
    if cfg.get("mh_adapter") and cfg.get("output_adapter"):
        return "ADAPTERHUB_DOUBLE_SEQ_BN"
    return "ADAPTERHUB_SEQ_BN"


def _width(hidden: int, factor: Any, layer: int | None) -> int:
    if isinstance(factor, Mapping):
        factor = factor.get(str(layer), factor.get("default"))
    ok = isinstance(factor, int | float) and not isinstance(factor, bool) and factor > 0
    if not ok:
        _bad_config("reduction_factor must be a positive number (or per-layer map)", "config")
    return max(1, int(hidden // factor))


def _parts(cfg: Mapping[str, Any], width: int, hidden: int) -> dict[str, tuple[int, ...]]:
    down = 1 if cfg.get("ln_before") else 0
    if cfg.get("phm_layer"):
        parts = phm_parts(cfg, width, hidden, down)
    else:
        parts = {
            f"adapter_down.{down}.weight": (width, hidden),
            f"adapter_down.{down}.bias": (width,),
            "adapter_up.weight": (hidden, width),
            "adapter_up.bias": (hidden,),
        }
    if cfg.get("ln_before"):  # the norm is adapter_down.0 and adapter_norm_before (shared):
        # adapters can only pickle it; adapters convert keeps the shorter name
        parts.update({"adapter_down.0.weight": (hidden,), "adapter_down.0.bias": (hidden,)})
    if cfg.get("ln_after"):
        parts.update({"adapter_norm_after.weight": (hidden,), "adapter_norm_after.bias": (hidden,)})
    if cfg.get("use_gating"):  # one scalar gate per position: Linear(hidden, 1)
        parts.update({"gate.weight": (1, hidden), "gate.bias": (1,)})
    return parts


def check_adapterhub(
    raw: Mapping[str, Any], tensors: Mapping[str, TensorInfo], base: BaseManifest | None
) -> tuple[list[str], int]:
    """Check the tensors against the config (and the base); return the adapted positions and
    the bottleneck width.

    Raises:
        InvalidAdapterConfig: ``schema``.
        InconsistentAdapter: ``unexpected_tensor``, ``missing_tensor``, ``shape_mismatch``.
        IncompatibleBase: ``model_type_mismatch``, ``shape_mismatch``, ``missing_modules``.
    """
    cfg, name, hidden = raw["config"], raw["name"], raw.get("hidden_size")
    if not isinstance(name, str) or not name:
        _bad_config("name must be a non-empty string", "name")
    if not isinstance(hidden, int) or isinstance(hidden, bool) or hidden <= 0:
        _bad_config("hidden_size must be a positive integer", "hidden_size")
    leave_out = cfg.get("leave_out") or []
    if not isinstance(leave_out, list) or not all(isinstance(i, int) for i in leave_out):
        _bad_config("leave_out must be a list of layer indices", "config")
    groups: dict[str, dict[str, TensorInfo]] = {}
    shared: dict[str, TensorInfo] = {}
    for key, info in tensors.items():
        found = SHARED_KEY.match(key) if cfg.get("phm_layer") else None
        if found is not None and found["name"] == name:
            shared[found["part"]] = info
            continue
        match = _KEY.match(key)
        if match is None or match["name"] != name:
            _inconsistent(
                "unexpected_tensor", f"{key} is not a tensor of adapter {name!r}", tensor=key
            )
        groups.setdefault(match["path"], {})[match["part"]] = info
    widths: set[int] = set()
    for path, parts in sorted(groups.items()):
        layer = layer_of(path)
        if layer is not None and layer in leave_out:
            _inconsistent("unexpected_tensor", f"layer {layer} is left out", module=path)
        width = _width(hidden, cfg.get("reduction_factor"), layer)
        widths.add(width)
        check_parts(path, parts, _parts(cfg, width, hidden))
    _check_positions(cfg, groups)
    if cfg.get("phm_layer"):
        check_parts(f"shared_parameters.{name}", shared, shared_parts(cfg, hidden))
    if base is not None:
        check_base(raw, hidden, groups, base)
    return sorted(groups), max(widths, default=0)


def layer_of(path: str) -> int | None:
    found = _LAYER.search(path + ".")
    return int(found.group(1)) if found else None


def check_parts(
    path: str, parts: Mapping[str, TensorInfo], expected: Mapping[str, tuple[int, ...]]
) -> None:
    for part, info in sorted(parts.items()):
        if part not in expected:
            _inconsistent(
                "unexpected_tensor", f"{info.name}: not saved by this config", tensor=info.name
            )
        if info.shape != expected[part]:
            _inconsistent(
                "shape_mismatch",
                f"{info.name}: expected {list(expected[part])}, got {list(info.shape)}",
                tensor=info.name,
                expected=list(expected[part]),
                actual=list(info.shape),
            )
    for part in sorted(expected.keys() - parts.keys()):
        _inconsistent("missing_tensor", f"{path}: {part} missing", module=path, tensor=part)


def _check_positions(cfg: Mapping[str, Any], groups: Mapping[str, Any]) -> None:
    """Each layer with an adapter has one at every position the config asks for."""
    wanted = [
        p
        for p, on in (("attention", cfg.get("mh_adapter")), ("output", cfg.get("output_adapter")))
        if on
    ]
    layers: dict[int, set[str]] = {}
    for path in groups:
        layer = layer_of(path)
        if layer is not None:
            kind = "attention" if ".attention." in path + "." or ".attn" in path else "output"
            layers.setdefault(layer, set()).add(kind)
    for layer, kinds in sorted(layers.items()):
        for kind in wanted:
            if kind not in kinds:
                _inconsistent(
                    "missing_tensor",
                    f"layer {layer} has no {kind} adapter",
                    layer=layer,
                    position=kind,
                )


def check_base(
    raw: Mapping[str, Any], hidden: int, groups: Mapping[str, Any], base: BaseManifest
) -> None:
    check_model(raw, hidden, base)
    names = list(base.tensors)
    for path in sorted(groups):
        layer = layer_of(path)
        beyond = layer is not None and base.num_layers is not None and layer >= base.num_layers
        if beyond or not _in_base(path, names):
            raise IncompatibleBase(
                f"{path} is not a module of the base",
                reason="missing_modules",
                context={"module": path},
            )


def _in_base(path: str, names: list[str]) -> bool:
    """Some base tensor lives under ``path``, with or without the head model's prefix
    (``bert.encoder...`` in the adapter, ``encoder...`` in a bare ``BertModel`` checkpoint)."""
    parts = path.split(".")
    candidates = {".".join(parts[i:]) for i in range(min(2, len(parts) - 1))}
    return any(n.startswith(c + ".") or f".{c}." in n for n in names for c in candidates)


def check_model(raw: Mapping[str, Any], hidden: int, base: BaseManifest) -> None:
    """The adapter's ``model_type`` and ``hidden_size`` against the base's (when both known).

    Raises:
        IncompatibleBase: ``model_type_mismatch``, ``shape_mismatch``.
    """
    model_type = raw.get("model_type")
    if base.model_type is not None and model_type not in (None, base.model_type):
        raise IncompatibleBase(
            f"adapter for {model_type}, base is {base.model_type}",
            reason="model_type_mismatch",
            context={"expected": base.model_type, "actual": model_type},
        )
    if base.hidden_size is not None and base.hidden_size != hidden:
        raise IncompatibleBase(
            f"adapter hidden size {hidden}, base {base.hidden_size}",
            reason="shape_mismatch",
            context={"field": "hidden_size", "expected": base.hidden_size, "actual": hidden},
        )
