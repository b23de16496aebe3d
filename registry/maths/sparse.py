"""Merge the sparse methods: SPARSE_DELTA, SHIRA, SUPERTUNING and TRAINABLE_TOKENS.

The adapter is checked as the validator checks it against the base - names and shapes
(:func:`~registry.validation.methods.engine.check_method`), then every index
(:func:`~registry.validation.methods.engine_indices.check_sparse_data`, here without a byte
budget: the merge reads the indices anyway) - so an index outside its base weight is refused
before a byte is written. Indices stay integers from the file to the scatter (a float32 index is
exact only below 2**24). The formulas, as peft 0.21.2's ``merge``:

* SPARSE_DELTA: ``weight.reshape(-1)[indices] += values`` (the stored layout, docs/formats.md);
* SHIRA: ``W[rows, cols] += shira_weight`` (``W`` as ``[out, in]``; duplicates add up, as in
  peft's ``sparse_coo_tensor``);
* SUPERTUNING: ``W.reshape(-1).scatter_add(indices, values)``, plus ``(alpha / r) * B @ A``
  when ``r`` is set; without saved indices peft recomputes them from the base: refused;
* TRAINABLE_TOKENS: the embedding rows ``token_indices`` *become* the saved rows
  (``index_copy``); the lm_head copy peft saves with tied embeddings is the same tensor.

Errors: :class:`~registry.errors.IncompatibleAdapters` (``module_not_in_base``,
``shape_mismatch``, ``index_out_of_range``), :class:`~registry.errors.NotMergeable`
(``indices_not_saved``); the validator's :class:`~registry.errors.AdapterInvalid` errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from registry.errors import IncompatibleAdapters, IncompatibleBase, NotMergeable
from registry.maths.deltas import Edit, Loader, LoraDelta
from registry.maths.st_stream import StFile
from registry.validation.checks_base import base_key, is_conv1d
from registry.validation.config import AdapterConfig
from registry.validation.layout import PEFT_PREFIX
from registry.validation.manifest import BaseManifest
from registry.validation.methods import METHODS
from registry.validation.methods.engine import check_method
from registry.validation.methods.engine_indices import check_sparse_data
from registry.validation.methods.peft_sparse import SPARSE_RULES

if TYPE_CHECKING:
    import torch

#: The peft types merged here.
SPARSE_MERGEABLE: frozenset[str] = frozenset(SPARSE_RULES)
_BASE_REASONS = {"missing_modules": "module_not_in_base"}


def _long(tensor: torch.Tensor) -> torch.Tensor:
    import torch

    if tensor.is_floating_point():  # the merge's loader keeps integer tensors as they are
        raise ValueError("index tensor is not integer")
    return tensor.to(torch.int64)


@dataclass(frozen=True)
class FlatAdd(Edit):
    """``weight.reshape(-1)[indices] += values * scaling`` (repeated indices add up)."""

    indices: str
    values: str
    scaling: float = 1.0

    def apply(self, weight: torch.Tensor, load: Loader) -> torch.Tensor:
        flat = weight.reshape(-1)
        flat.index_add_(0, _long(load(self.indices)), load(self.values), alpha=self.scaling)
        return flat.reshape(weight.shape)


@dataclass(frozen=True)
class CoordAdd(Edit):
    """SHIRA: ``W[rows, cols] += values`` from ``[2, nnz]`` indices (``W`` as ``[out, in]``;
    ``transpose`` for a Conv1D weight stored ``[in, out]``)."""

    indices: str
    values: str
    transpose: bool = False

    def apply(self, weight: torch.Tensor, load: Loader) -> torch.Tensor:
        index = _long(load(self.indices))
        rows, cols = (index[1], index[0]) if self.transpose else (index[0], index[1])
        return weight.index_put_((rows, cols), load(self.values), accumulate=True)


@dataclass(frozen=True)
class RowCopy(Edit):
    """TRAINABLE_TOKENS: the rows ``rows`` of an embedding become the saved rows."""

    tensor: str
    rows: tuple[int, ...]

    def apply(self, weight: torch.Tensor, load: Loader) -> torch.Tensor:
        import torch

        index = torch.tensor(self.rows, dtype=torch.int64, device=weight.device)
        return weight.index_copy_(0, index, load(self.tensor))


def _values(adapter: StFile, suffix: str) -> dict[str, str]:
    tail = "." + suffix
    return {
        name[len(PEFT_PREFIX) : -len(tail)]: name
        for name in adapter.tensors
        if name.startswith(PEFT_PREFIX) and name.endswith(tail)
    }


def _check(cfg: AdapterConfig, adapter: StFile, manifest: BaseManifest) -> None:
    try:
        check_method(cfg, METHODS[cfg.peft_type], adapter.tensors, manifest)
        budget = adapter.source.size  # the merge reads every index anyway
        check_sparse_data(cfg, adapter.header, adapter.source, manifest, max_index_bytes=budget)
    except IncompatibleBase as exc:
        reason = _BASE_REASONS.get(exc.reason, exc.reason)
        raise IncompatibleAdapters(exc.detail, context={**exc.context, "reason": reason}) from exc


def _module_edits(cfg: AdapterConfig, module: str, manifest: BaseManifest) -> list[Edit]:
    rule = SPARSE_RULES[cfg.peft_type]
    name = f"{PEFT_PREFIX}{module}."
    values, indices = name + rule.values, name + rule.indices
    if cfg.peft_type == "SPARSE_DELTA":
        return [FlatAdd(module, indices, values)]
    if cfg.peft_type == "SHIRA":
        return [CoordAdd(module, indices, values, is_conv1d(cfg, manifest, module))]
    if cfg.peft_type == "TRAINABLE_TOKENS":
        rows = tuple(int(i) for i in cfg.raw[rule.config_key])
        return [RowCopy(module, values, rows)]
    edits: list[Edit] = [FlatAdd(module, indices, values)]
    r = cfg.raw.get("r")
    if isinstance(r, int) and r > 0:
        alpha = cfg.raw.get("lora_alpha")
        scaling = float(alpha if isinstance(alpha, int | float) else 2 * r) / r
        a, b = name + "supertuning_lora_A.weight", name + "supertuning_lora_B.weight"
        edits.append(LoraDelta(module, a, b, scaling, is_conv1d(cfg, manifest, module)))
    return edits


def sparse_edits(
    cfg: AdapterConfig, adapter: StFile, manifest: BaseManifest
) -> tuple[list[tuple[str, Edit]], int]:
    """Check a sparse adapter against the base; return ``(base key, edit)`` pairs and the number
    of modules merged.

    Raises:
        IncompatibleAdapters, NotMergeable, AdapterInvalid: see the module docstring.
    """
    _check(cfg, adapter, manifest)
    rule = SPARSE_RULES[cfg.peft_type]
    modules = _values(adapter, rule.values)
    edits: list[tuple[str, Edit]] = []
    targets: set[str] = set()
    for module in sorted(modules):
        if rule.indices and f"{PEFT_PREFIX}{module}.{rule.indices}" not in adapter.tensors:
            raise NotMergeable(
                f"{module}: {cfg.peft_type} without saved indices (peft recomputes them from"
                " the base weights) cannot be merged by this implementation",
                context={"peft_type": cfg.peft_type, "reason": "indices_not_saved"},
            )
        target = base_key(manifest, module + ".weight")
        if target is None:  # check_method found it; a guard for the type checker
            raise IncompatibleAdapters(
                f"{module}.weight is not in the base",
                context={"reason": "module_not_in_base", "module": module},
            )
        if cfg.peft_type == "TRAINABLE_TOKENS" and target in targets:
            continue  # a tied lm_head's copy: the same parameter as the embedding's, in peft
        targets.add(target)
        edits.extend((target, edit) for edit in _module_edits(cfg, module, manifest))
    return edits, len(targets)
