"""What compose checks before it computes anything, and the config it writes.

peft's constraints (``_check_add_weighted_adapter``) and the ones peft misses are refused with
``IncompatibleAdapters`` and a stable ``context["reason"]``; see docs/maths.md.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from registry.maths import require_torch
from registry.maths.lora import LoraAdapter, LoraModule, refuse
from registry.maths.prune import DENSITY_KINDS, RANDOM_KINDS, SIGN_KINDS, SIGN_METHODS

if TYPE_CHECKING:
    from torch import Tensor

METHODS = (
    "linear",
    "cat",
    "svd",
    "ties",
    "ties_svd",
    "dare_linear",
    "dare_ties",
    "dare_linear_svd",
    "dare_ties_svd",
    "magnitude_prune",
    "magnitude_prune_svd",
)


@dataclass(frozen=True)
class Params:
    """A compose call's method and the parameters it uses (the others are None)."""

    method: str
    kind: str  # "cat", or the prune.merge kind: "linear" for svd, "ties" for ties_svd, ...
    svd: bool
    density: float | None
    seed: int | None
    sign_method: str | None

    @property
    def equal_ranks(self) -> bool:
        """peft mixes A's and B's of equal shapes: every input's rank must be the same."""
        return self.kind != "cat" and not self.svd


def parameters(
    method: str, density: float | None, seed: int | None, majority_sign_method: str
) -> Params:
    """Validate the method's parameters; a random method without a seed gets a fresh one."""
    if method not in METHODS:
        raise refuse("unknown_method", f"unknown compose method {method!r}", method=method)
    kind = "linear" if method == "svd" else method.removesuffix("_svd")
    if kind in DENSITY_KINDS:
        if density is None:
            raise refuse("density_required", f"{method} needs a density", method=method)
        if not (math.isfinite(density) and 0 < density <= 1):
            raise refuse("invalid_density", f"density must be in (0, 1], not {density}")
    if kind in SIGN_KINDS and majority_sign_method not in SIGN_METHODS:
        raise refuse(
            "invalid_majority_sign_method",
            f"majority_sign_method must be one of {SIGN_METHODS}",
            majority_sign_method=majority_sign_method,
        )
    if kind in RANDOM_KINDS and seed is None:
        seed = secrets.randbits(63)
    return Params(
        method,
        kind,
        method.endswith("svd"),
        density if kind in DENSITY_KINDS else None,
        seed if kind in RANDOM_KINDS else None,
        majority_sign_method if kind in SIGN_KINDS else None,
    )


def _target_kind(adapter: LoraAdapter) -> str:
    spec = adapter.config.target_modules
    return "unset" if spec is None else "regex" if isinstance(spec, str) else "list"


def check_combinable(adapters: Sequence[LoraAdapter]) -> None:
    """Refuse inputs whose combination peft refuses, or could not save correctly."""
    if any(a.config.lora_bias for a in adapters):
        raise refuse("lora_bias_not_combinable", "adapters with a lora_B bias cannot be combined")
    kinds = sorted({_target_kind(a) for a in adapters})
    if len(kinds) > 1:
        raise refuse("target_kind_mismatch", "target_modules mix lists and regexes", kinds=kinds)
    scopes = {
        repr((c.layers_to_transform, c.layers_pattern, c.exclude_modules))
        for c in (a.config for a in adapters)
    }
    if len(scopes) > 1:
        raise refuse(
            "different_targets",
            "inputs restrict their targets differently (layers_to_transform, layers_pattern, "
            "exclude_modules): no one config targets exactly their union",
        )
    if len({a.config.bias for a in adapters}) > 1:
        raise refuse("bias_mismatch", "inputs train different biases (bias setting)")


def check_module(name: str, parts: Sequence[tuple[float, LoraModule]], params: Params) -> str:
    """The module's kind, once its inputs agree on kind, shape and (where needed) rank."""
    kinds = sorted({m.kind for _, m in parts})
    if len(kinds) > 1:
        raise refuse("mixed_module_kinds", f"{name}: embedding and linear LoRA", module=name)
    shapes = {(int(m.b.shape[0]), int(m.a.shape[1])) for _, m in parts}
    if len(shapes) > 1:
        raise refuse("shape_mismatch", f"{name}: inputs disagree on the shape", module=name)
    ranks = sorted({m.rank for _, m in parts})
    if params.equal_ranks and len(ranks) > 1:
        raise refuse(
            "unequal_ranks",
            f"{params.method} needs equal ranks; {name} has ranks {ranks}",
            module=name,
            ranks=ranks,
        )
    return kinds[0]


def carried_tensors(adapters: Sequence[LoraAdapter]) -> tuple[dict[str, Tensor], dict[str, int]]:
    """Tensors the inputs save whole (``modules_to_save`` copies, trained biases), carried
    over unchanged, with the input each came from. Two inputs saving one name differently
    cannot both be kept."""
    torch = require_torch()
    tensors: dict[str, Tensor] = {}
    owner: dict[str, int] = {}
    for index, adapter in enumerate(adapters):
        for key, tensor in sorted(adapter.extra.items()):
            if key not in tensors:
                tensors[key], owner[key] = tensor, index
            elif not torch.equal(tensors[key], tensor):
                raise refuse(
                    "modules_to_save_conflict",
                    f"two inputs save their own {key}",
                    key=key,
                    inputs=[owner[key], index],
                )
    return tensors, owner


def union_targets(adapters: Sequence[LoraAdapter]) -> list[str] | str | None:
    """peft's union: names united (sorted), regexes joined as ``(t₁)|(t₂)…``."""
    specs = [a.config.target_modules for a in adapters]
    if isinstance(specs[0], str):
        return "|".join(f"({s})" for s in specs)
    if specs[0] is None:
        return None
    return sorted(set().union(*(set(s or ()) for s in specs)))


def output_config(
    adapters: Sequence[LoraAdapter], ranks: dict[str, int], rank: int | None = None
) -> dict[str, Any]:
    """The first input's config with ``r = lora_alpha`` (scaling 1, no rsLoRA, no DoRA), per
    module patterns where a module's rank differs from ``r``, and the union of the targets
    and of ``modules_to_save``."""
    r = rank if rank is not None else max(ranks.values())
    patterns = {name: k for name, k in sorted(ranks.items()) if k != r}
    saved = sorted({m for a in adapters for m in a.config.modules_to_save or ()})
    return adapters[0].raw | {
        "r": r,
        "lora_alpha": r,
        "use_rslora": False,
        "use_dora": False,
        "rank_pattern": patterns,
        "alpha_pattern": dict(patterns),
        "target_modules": union_targets(adapters),
        "modules_to_save": saved or None,
    }
