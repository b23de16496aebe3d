"""Merge the bias-only methods: the registry-native BITFIT and peft's BEFT.

Both add a vector to the base module's bias, as peft 0.21.2's ``BeftLayer.merge`` does
(``bias += beft_bias.squeeze()``); BITFIT's delta is stored as the bias itself
(``base_model.model.<module>.bias``, docs/formats.md). The adapter is first checked against the
base as the validator checks it (:func:`~registry.validation.methods.engine.check_method`, and
for BITFIT :func:`~registry.validation.methods.bias_checks.check_bias_deltas`).

Errors: :class:`~registry.errors.NotMergeable` reason ``missing_bias`` for a module whose base has
no bias (peft refuses the same merge: the architecture has no place for it);
:class:`~registry.errors.IncompatibleAdapters` (``module_not_in_base``, ``shape_mismatch``); the
validator's :class:`~registry.errors.AdapterInvalid` errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from registry.errors import IncompatibleAdapters, IncompatibleBase, NotMergeable
from registry.maths.deltas import Edit, Loader
from registry.maths.st_stream import StFile
from registry.validation.config import AdapterConfig
from registry.validation.layout import PEFT_PREFIX
from registry.validation.manifest import BaseManifest
from registry.validation.methods import METHODS
from registry.validation.methods.bias_checks import check_bias_deltas
from registry.validation.methods.engine import check_method

if TYPE_CHECKING:
    import torch

#: peft_type -> the suffix of its per-module delta.
BIAS_SUFFIXES: Mapping[str, str] = {"BITFIT": "bias", "BEFT": "beft_bias"}
BIAS_MERGEABLE: frozenset[str] = frozenset(BIAS_SUFFIXES)
_BASE_REASONS = {"missing_modules": "module_not_in_base"}


@dataclass(frozen=True)
class BiasAdd(Edit):
    """``bias += delta`` (a ``[1, out]`` BEFT delta is flattened to the bias's shape)."""

    tensor: str

    def apply(self, weight: torch.Tensor, load: Loader) -> torch.Tensor:
        delta = load(self.tensor)
        if delta.numel() != weight.numel():
            raise ValueError(f"bias delta {list(delta.shape)} != base {list(weight.shape)}")
        return weight.add_(delta.reshape(weight.shape))


def _check(cfg: AdapterConfig, adapter: StFile, manifest: BaseManifest) -> None:
    try:
        check_method(cfg, METHODS[cfg.peft_type], adapter.tensors, manifest)
        if cfg.peft_type == "BITFIT":
            check_bias_deltas(adapter.tensors, manifest)
    except IncompatibleBase as exc:
        if exc.reason == "missing_bias":
            raise NotMergeable(
                exc.detail, context={**exc.context, "peft_type": cfg.peft_type, **_no_bias()}
            ) from exc
        reason = _BASE_REASONS.get(exc.reason, exc.reason)
        raise IncompatibleAdapters(exc.detail, context={**exc.context, "reason": reason}) from exc


def _no_bias() -> dict[str, str]:
    return {"reason": "missing_bias"}


def bias_edits(
    cfg: AdapterConfig, adapter: StFile, manifest: BaseManifest
) -> tuple[list[tuple[str, Edit]], int]:
    """Check a bias-only adapter against the base; return ``(base key, edit)`` pairs and the
    number of modules merged.

    Raises:
        NotMergeable, IncompatibleAdapters, AdapterInvalid: see the module docstring.
    """
    _check(cfg, adapter, manifest)
    tail = "." + BIAS_SUFFIXES[cfg.peft_type]
    edits: list[tuple[str, Edit]] = []
    for name in sorted(adapter.tensors):
        if not (name.startswith(PEFT_PREFIX) and name.endswith(tail)):
            continue
        module = name[len(PEFT_PREFIX) : -len(tail)]
        target = module + ".bias"
        if target not in manifest.tensors:
            raise NotMergeable(
                f"{module} has no bias in the base to add the delta to",
                context={"peft_type": cfg.peft_type, "module": module, **_no_bias()},
            )
        edits.append((target, BiasAdd(module, name)))
    return edits, len(edits)
