"""Compose several LoRA adapters of one base into one: peft's ``add_weighted_adapter`` methods,
computed as peft does except where peft is wrong (docs/maths.md lists where and why).

Per module, over the inputs that adapt it (``wᵢ`` the input's weight, ``sᵢ`` its scaling):

* ``cat``: ``A = cat(Aᵢ·wᵢ·sᵢ)``, ``B = cat(Bᵢ)``: exactly ``Σ wᵢ·sᵢ·BᵢAᵢ``, rank ``Σ rᵢ``.
* ``linear``, ``ties``, ``dare_linear``, ``dare_ties``, ``magnitude_prune``: the A's and the B's
  merged separately (:func:`registry.maths.prune.merge`) with weights ``±sqrt(|wᵢ·sᵢ|)`` on A
  and ``sqrt(|wᵢ·sᵢ|)`` on B; equal ranks required. Not ``Σ wᵢ·sᵢ·BᵢAᵢ`` (cross terms).
* ``svd``: ``Σ wᵢ·sᵢ·BᵢAᵢ`` truncated to ``rank`` singular values, from the factors
  (:func:`registry.maths.compose_svd.lowrank_svd`).
* ``ties_svd``, ``dare_linear_svd``, ``dare_ties_svd``, ``magnitude_prune_svd``: the dense deltas
  ``sᵢ·BᵢAᵢ`` merged elementwise, then truncated (:func:`registry.maths.compose_svd.dense_svd`).

The output's scaling is 1 (``lora_alpha = r``, no rsLoRA), so its ``B @ A`` is its delta.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.maths import require_torch
from registry.maths.combine import (
    Input,
    Progress,
    base_recipe,
    check_empty,
    check_no_dora,
    check_same_base,
    write_adapter,
)
from registry.maths.compose_checks import (
    METHODS,
    Params,
    carried_tensors,
    check_combinable,
    check_module,
    output_config,
    parameters,
)
from registry.maths.compose_svd import Truncated, dense_svd, lowrank_svd
from registry.maths.lora import LoraAdapter, LoraModule, load_lora, refuse
from registry.maths.prune import generator, merge
from registry.maths.report import MathsReport

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["METHODS", "compose"]

Parts = Sequence[tuple[float, LoraModule]]


def compose(
    inputs: Sequence[Input],
    out_dir: Path,
    *,
    method: str,
    rank: int | None = None,
    density: float | None = None,
    seed: int | None = None,
    majority_sign_method: str = "total",
    progress: Progress | None = None,
) -> MathsReport:
    """Combine ``inputs`` with ``method`` into a new adapter written to ``out_dir`` (which must
    not exist or be empty; nothing is left there when this raises).

    ``rank`` is the output rank of the ``*svd`` methods (default: the largest input rank),
    ``density`` the fraction kept by the pruning methods, ``seed`` seeds the ``dare_*``
    methods (a fresh one, recorded in the recipe, when None), ``majority_sign_method``
    (``total`` | ``frequency``) elects signs for the ``*ties*`` methods.

    Raises:
        IncompatibleAdapters: the inputs or parameters cannot be combined (``context["reason"]``).
    """
    require_torch()
    params = parameters(method, density, seed, majority_sign_method)
    if not inputs:
        raise refuse("no_inputs", "compose needs at least one input")
    if rank is not None and rank < 1:
        raise refuse("invalid_rank", f"rank must be at least 1, not {rank}", rank=rank)
    check_empty(out_dir)
    adapters = [load_lora(i.path) for i in inputs]
    check_same_base(adapters)
    check_no_dora(adapters)
    check_combinable(adapters)
    extra, owners = carried_tensors(adapters)
    names = sorted(set().union(*(a.modules for a in adapters)))
    parts = {name: _parts(name, inputs, adapters) for name in names}
    kinds = {name: check_module(name, parts[name], params) for name in names}
    new_rank = None
    if params.svd:
        new_rank = rank or max(m.rank for a in adapters for m in a.modules.values())
    modules: dict[str, tuple[str, Any, Any]] = {}
    errors: dict[str, tuple[float, float]] = {}
    for done, name in enumerate(names, 1):
        a, b, truncated = _combine(name, kinds[name], parts[name], params, new_rank)
        modules[name] = (kinds[name], a, b)
        if truncated is not None:
            errors[name] = (truncated.discarded, truncated.total)
        if progress is not None:
            progress(done, len(names))
    ranks = {name: int(a.shape[0]) for name, (_, a, _) in modules.items()}
    config = output_config(adapters, ranks, new_rank)
    recipe = base_recipe(
        "compose",
        method,
        inputs,
        rank=new_rank,
        density=params.density,
        seed=params.seed,
        majority_sign_method=params.sign_method,
    )
    recipe["output"] = {"r": config["r"], "modules": len(modules), "carried": owners}
    if params.svd:
        recipe["measured"] = _truncation_errors(errors)
    report = MathsReport(operation="compose", method=method, out_dir=out_dir, recipe=recipe)
    return write_adapter(out_dir, config, modules, report, extra=extra)


def _parts(name: str, inputs: Sequence[Input], adapters: Sequence[LoraAdapter]) -> Parts:
    return [
        (i.weight, a.modules[name])
        for i, a in zip(inputs, adapters, strict=True)
        if name in a.modules
    ]


def _combine(
    name: str, kind: str, parts: Parts, params: Params, new_rank: int | None
) -> tuple[Tensor, Tensor, Truncated | None]:
    """One module's ``(A, B)``, and the truncation for the svd methods."""
    torch = require_torch()
    if params.kind == "cat":
        a = torch.cat([m.a * w * m.scaling for w, m in parts], dim=0)
        return a, torch.cat([m.b for _, m in parts], dim=1), None
    if params.method == "svd":
        assert new_rank is not None
        b_cat = torch.cat([m.b * (w * m.scaling) for w, m in parts], dim=1)
        t = lowrank_svd(b_cat, torch.cat([m.a for _, m in parts], dim=0), new_rank)
        return t.a, t.b, t
    gen = generator(params.seed, name) if params.seed is not None else None
    merge_args: dict[str, Any] = {"density": params.density, "gen": gen}
    merge_args["sign_method"] = params.sign_method or "total"
    if params.svd:
        assert new_rank is not None
        t = dense_svd(_merged_delta(kind, parts, params.kind, merge_args), new_rank)
        return t.a, t.b, t
    root = [math.sqrt(abs(w * m.scaling)) for w, m in parts]
    signs = [1 if w * m.scaling >= 0 else -1 for w, m in parts]
    weights_a = torch.tensor([r * s for r, s in zip(root, signs, strict=True)])
    a = merge(params.kind, [m.a for _, m in parts], weights_a, **merge_args)
    b = merge(params.kind, [m.b for _, m in parts], torch.tensor(root), **merge_args)
    return a, b, None


def _merged_delta(kind: str, parts: Parts, merge_kind: str, merge_args: dict[str, Any]) -> Tensor:
    """``merge`` of the dense deltas ``sᵢ·BᵢAᵢ``, in the ``[out, in]`` orientation. peft
    prunes each delta as ``get_delta_weight`` returns it (transposed for embeddings and
    ``fan_in_fan_out`` modules), which fixes where a seeded DARE mask falls: so do we."""
    torch = require_torch()
    transposed = kind == "embedding" or any(m.fan_in_fan_out for _, m in parts)
    deltas = [((m.b @ m.a).T if transposed else m.b @ m.a) * m.scaling for _, m in parts]
    weights = torch.tensor([w for w, _ in parts])
    merged = merge(merge_kind, deltas, weights, **merge_args)
    return merged.T if transposed else merged


def _truncation_errors(errors: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """Relative Frobenius errors ``‖Δ - Δ_k‖ / ‖Δ‖`` of the truncation, over all modules and
    at the worst module, from the discarded singular values."""

    def relative(discarded: float, total: float) -> float:
        return math.sqrt(discarded / total) if total > 0 else 0.0

    worst = max(errors, key=lambda n: relative(*errors[n]), default=None)
    return {
        "truncation_error": relative(
            sum(d for d, _ in errors.values()), sum(t for _, t in errors.values())
        ),
        "max_module_truncation_error": relative(*errors[worst]) if worst else 0.0,
        "worst_module": worst,
    }
