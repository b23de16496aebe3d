"""Prediction heads saved beside an AdapterHub adapter (``head_config.json`` +
``model_head.safetensors``), checked against their config and the hidden size.

Rules, from ``adapters`` 1.3 (``heads/base.py``: ``PredictionHead.build``): the head is a
``Sequential`` numbered from 0; each of ``layers`` layers starts with a dropout; every layer but
the last adds ``Linear(H, H)`` (with bias) and, with ``activation_function``, the activation; the
last adds ``Linear(H, num_labels)`` (``num_labels`` in the config), ``Linear(H, 1)``
(``num_choices``) or ``Linear(H, H)`` plus the activation, with a bias unless ``bias: false``.
The tensors are ``heads.<name>.<index>.weight`` / ``.bias``.

Checked: ``classification``, ``multilabel_classification``, ``tagging``, ``multiple_choice``,
``question_answering`` (the heads built that way). Other head types (``causal_lm``,
``masked_lm``, ``seq2seq_lm``, ``image_classification``, ``dependency_parsing``, custom heads)
are accepted with a warning that their tensors were not checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from registry.errors import InconsistentAdapter, InvalidAdapterConfig
from registry.validation.safetensors import TensorInfo

CHECKED_HEADS = frozenset(
    {
        "classification",
        "multilabel_classification",
        "tagging",
        "multiple_choice",
        "question_answering",
    }
)


def _bad(detail: str, field: str) -> NoReturn:
    raise InvalidAdapterConfig(
        detail, reason="schema", context={"file": "head_config.json", "field": field}
    )


def _count(cfg: Mapping[str, Any], key: str) -> int:
    value = cfg.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        _bad(f"{key} must be a positive integer", f"config.{key}")
    return value


def expected_head(cfg: Mapping[str, Any], hidden: int) -> dict[str, tuple[int, ...]]:
    """``<index>.weight|bias`` -> shape for a head built by ``PredictionHead.build``."""
    layers, active = _count(cfg, "layers"), bool(cfg.get("activation_function"))
    if "num_labels" in cfg:
        outputs = _count(cfg, "num_labels")
    elif "num_choices" in cfg:
        outputs = 1
    else:
        outputs = hidden
    parts: dict[str, tuple[int, ...]] = {}
    index = 0
    for layer in range(layers):
        index += 1  # the dropout
        last = layer == layers - 1
        width = outputs if last else hidden
        parts[f"{index}.weight"] = (width, hidden)
        if not last or cfg.get("bias", True):
            parts[f"{index}.bias"] = (width,)
        index += 2 if active and not last else 1  # the linear layer, then the activation
    return parts


def check_head(raw: Mapping[str, Any], tensors: Mapping[str, TensorInfo], hidden: int) -> list[str]:
    """Check the head's tensors; return warnings (a head type whose tensors are not checked).

    Raises:
        InvalidAdapterConfig: ``schema``.
        InconsistentAdapter: ``unexpected_tensor``, ``missing_tensor``, ``shape_mismatch``.
    """
    cfg, name = raw.get("config"), raw.get("name")
    if not isinstance(cfg, dict) or not isinstance(name, str) or not name:
        _bad("head_config.json needs a config object and a name", "config")
    head_type = cfg.get("head_type")
    if head_type not in CHECKED_HEADS:
        return [f"prediction head {name!r} of type {str(head_type)[:64]!r}: tensors not checked"]
    expected = {f"heads.{name}.{k}": v for k, v in expected_head(cfg, hidden).items()}
    for key, info in sorted(tensors.items()):
        if key not in expected:
            raise InconsistentAdapter(
                f"{key}: not a tensor of head {name!r} ({head_type})",
                reason="unexpected_tensor",
                context={"tensor": key, "file": "model_head.safetensors"},
            )
        if info.shape != expected[key]:
            raise InconsistentAdapter(
                f"{key}: expected {list(expected[key])}, got {list(info.shape)}",
                reason="shape_mismatch",
                context={
                    "tensor": key,
                    "expected": list(expected[key]),
                    "actual": list(info.shape),
                },
            )
    for key in sorted(expected.keys() - tensors.keys()):
        raise InconsistentAdapter(
            f"head {name!r}: {key} missing",
            reason="missing_tensor",
            context={"tensor": key, "file": "model_head.safetensors"},
        )
    return []
