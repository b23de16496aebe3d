"""Prefix tuning saved by AdapterHub's ``adapters`` library (``architecture: prefix_tuning``),
as ``adapter-registry adapters convert`` writes it: ``adapters`` itself cannot save prefix tuning
as safetensors (the pool's tensors are shared with a copy in every layer), so its
``pytorch_adapter.bin`` is converted keeping one name per tensor - the pool's.

Tensors, from ``adapters`` 1.3 (``methods/prefix_tuning.py``), for ``<name>`` the config's name,
``H`` the hidden size, ``L`` the layers that carry the prefix (the base's layers less
``leave_out``), ``P = prefix_length`` and ``B = bottleneck_size``, under
``<prefix>.prefix_tuning.prefix_tunings.<name>.self_prefix``:

- ``flat: false``: ``wte.weight [P, H]``, ``control_trans.0.weight [B, H]``,
  ``control_trans.0.bias [B]``, ``control_trans.2.weight [L*2*H, B]``,
  ``control_trans.2.bias [L*2*H]``;
- ``flat: true``: ``control_trans [P*L*2*H]``;
- with ``use_gating``, one gate per layer that carries the prefix, beside that layer's attention:
  ``<layer path>.prefix_tuning.prefix_gates.<name>.weight [1, H]`` and ``.bias [1]``.

Only the encoder-only ``self_prefix`` is validated; an ``encoder_prefix``/``cross_prefix`` group
(encoder-decoder models) is refused as ``unknown_peft_type`` / ``not_validated``, and so are the
per-layer ``...attention.self.prefix_tuning.pool...`` copies (convert again to drop them).
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
from registry.validation.adapterhub import check_model, check_parts
from registry.validation.manifest import BaseManifest
from registry.validation.safetensors import TensorInfo

_KEY = re.compile(
    r"(?P<prefix>(?:[^.]+\.)?)prefix_tuning\.prefix_tunings\.(?P<name>[^.]+)\."
    r"(?P<group>[^.]+)\.(?P<part>.+)\Z"
)
_GATE = re.compile(
    r"(?P<path>.+)\.prefix_tuning\.prefix_gates\.(?P<name>[^.]+)\.(?P<part>weight|bias)\Z"
)
_POSITIVE = ("prefix_length", "bottleneck_size")


def _bad(detail: str, field: str = "config") -> NoReturn:
    raise InvalidAdapterConfig(
        detail, reason="schema", context={"file": "adapter_config.json", "field": field}
    )


def _inconsistent(reason: str, detail: str, **context: Any) -> NoReturn:
    raise InconsistentAdapter(detail, reason=reason, context=context)


def _positive(cfg: Mapping[str, Any], key: str) -> int:
    value = cfg.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        _bad(f"{key} must be a positive integer")
    return value


def _layers(cfg: Mapping[str, Any], base: BaseManifest | None) -> int | None:
    leave_out = cfg.get("leave_out") or []
    if not isinstance(leave_out, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in leave_out
    ):
        _bad("leave_out must be a list of layer indices")
    if base is None or base.num_layers is None:
        return None
    return base.num_layers - len({i for i in leave_out if 0 <= i < base.num_layers})


def _expected(cfg: Mapping[str, Any], hidden: int, layers: int) -> dict[str, tuple[int, ...]]:
    length = _positive(cfg, "prefix_length")
    out = layers * 2 * hidden
    if cfg.get("flat"):
        return {"control_trans": (length * out,)}
    width = _positive(cfg, "bottleneck_size")
    return {
        "wte.weight": (length, hidden),
        "control_trans.0.weight": (width, hidden),
        "control_trans.0.bias": (width,),
        "control_trans.2.weight": (out, width),
        "control_trans.2.bias": (out,),
    }


def _inferred_layers(cfg: Mapping[str, Any], parts: Mapping[str, TensorInfo], hidden: int) -> int:
    """The layer count the tensors imply (the tensors are then checked against it)."""
    if cfg.get("flat"):
        info = parts.get("control_trans")
        size = info.shape[0] if info is not None and len(info.shape) == 1 else 0
        size //= _positive(cfg, "prefix_length")
    else:
        info = parts.get("control_trans.2.bias")
        size = info.shape[0] if info is not None and len(info.shape) == 1 else 0
    return max(1, size // (2 * hidden))


def check_prefix_tuning(
    raw: Mapping[str, Any], tensors: Mapping[str, TensorInfo], base: BaseManifest | None
) -> tuple[list[str], int]:
    """Check a converted prefix-tuning adapter; return its module and the prefix length.

    Raises:
        InvalidAdapterConfig: ``schema``.
        UnknownPeftType: ``not_validated`` (encoder-decoder prefix groups).
        InconsistentAdapter: ``unexpected_tensor``, ``missing_tensor``, ``shape_mismatch``.
        IncompatibleBase: ``model_type_mismatch``, ``shape_mismatch``.
    """
    cfg, name, hidden = raw["config"], raw["name"], raw.get("hidden_size")
    if not isinstance(name, str) or not name:
        _bad("name must be a non-empty string", "name")
    if not isinstance(hidden, int) or isinstance(hidden, bool) or hidden <= 0:
        _bad("hidden_size must be a positive integer", "hidden_size")
    if base is not None:
        check_model(raw, hidden, base)
    parts: dict[str, TensorInfo] = {}
    gates: dict[str, dict[str, TensorInfo]] = {}
    modules: set[str] = set()
    for key, info in tensors.items():
        gate = _GATE.match(key)
        if gate is not None and gate["name"] == name:
            gates.setdefault(gate["path"], {})[gate["part"]] = info
            continue
        match = _KEY.match(key)
        if match is None or match["name"] != name or ".pool." in key:
            _inconsistent(
                "unexpected_tensor",
                f"{key} is not a tensor of prefix {name!r}'s pool (per-layer copies of the pool"
                " are dropped by adapter-registry adapters convert)",
                tensor=key,
            )
        if match["group"] != "self_prefix":
            raise UnknownPeftType(
                f"{match['group']}: encoder-decoder prefix tuning cannot be validated yet",
                reason="not_validated",
                context={"peft_type": "ADAPTERHUB_PREFIX_TUNING", "tensor": key},
            )
        modules.add(key[: -len(match["part"]) - 1])
        parts[match["part"]] = info
    layers = _inferred_layers(cfg, parts, hidden)
    expected = _expected(cfg, hidden, layers)
    for part, info in sorted(parts.items()):
        if part not in expected:
            _inconsistent(
                "unexpected_tensor", f"{info.name}: not saved by this config", tensor=info.name
            )
        if info.shape != expected[part]:
            _inconsistent(
                "shape_mismatch",
                f"{info.name}: expected {list(expected[part])} ({layers} layers, hidden"
                f" {hidden}), got {list(info.shape)}",
                tensor=info.name,
                expected=list(expected[part]),
                actual=list(info.shape),
            )
    for part in sorted(expected.keys() - parts.keys()):
        _inconsistent("missing_tensor", f"prefix {name!r}: {part} missing", tensor=part)
    _check_gates(cfg, gates, hidden, layers)
    wanted = _layers(cfg, base)
    if wanted is not None and wanted != layers:
        raise IncompatibleBase(
            f"prefix {name!r} covers {layers} layers, the base has {wanted} (less leave_out)",
            reason="shape_mismatch",
            context={"field": "num_layers", "expected": wanted, "actual": layers},
        )
    return sorted(modules), _positive(cfg, "prefix_length")


def _check_gates(
    cfg: Mapping[str, Any], gates: Mapping[str, Mapping[str, TensorInfo]], hidden: int, layers: int
) -> None:
    """``use_gating``: a ``[1, H]`` weight and ``[1]`` bias beside each of the ``layers``
    layers' attention; none without it."""
    if not cfg.get("use_gating"):
        for parts in gates.values():
            for info in parts.values():
                _inconsistent(
                    "unexpected_tensor",
                    f"{info.name}: a gate, but use_gating is off",
                    tensor=info.name,
                )
        return
    for path, parts in sorted(gates.items()):
        check_parts(path, parts, {"weight": (1, hidden), "bias": (1,)})
    if len(gates) != layers:
        _inconsistent(
            "missing_tensor",
            f"use_gating: {len(gates)} layer gates for a prefix over {layers} layers",
            expected=layers,
            actual=len(gates),
        )
