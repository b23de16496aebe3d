"""Federated aggregation of LoRA adapters trained by several sites on one base.

Each site's weight is its sample count; ``pᵢ = wᵢ / Σ w`` and the target is the weighted mean
of the sites' weight changes ``Σ pᵢ·ΔWᵢ`` (``ΔWᵢ = sᵢ·BᵢAᵢ``), a module a site lacks counting
as a zero change. Methods (see docs/maths.md, "Aggregate (federated)"):

* ``stack`` (FLoRA): ``B = [p₁s₁B₁, …]``, ``A = [A₁; …]``, scaling 1 (``lora_alpha = r``, no
  rsLoRA), so ``B @ A`` is the target exactly; rank ``Σ rᵢ`` per module.
* ``fedavg``: A and B averaged separately (equal ranks), inexact: the recipe says so and carries
  the measured error, computed from the factors.
* Both: when every site holding a module has the same ``lora_A`` (FFA-LoRA), ``B = Σ pᵢsᵢBᵢ``
  with that A is exact at the sites' rank (``"ffa": true`` when all modules were so).
* ``robust``: ``clip``, ``trimmed_mean``, ``median`` (:mod:`registry.maths.robust`) on the
  products, with ``stack`` only.
* ``max_rank``: truncation by low-rank SVD (:mod:`registry.maths.lowrank`), error reported.

Sites are sorted canonically first and zero-sample sites dropped, so any order of the same
sites gives the same bytes, and a zero-sample site changes nothing.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.maths import require_torch
from registry.maths.combine import (
    Input,
    Progress,
    base_recipe,
    check_no_dora,
    check_same_base,
    write_adapter,
)
from registry.maths.lora import CONFIG, WEIGHTS, LoraAdapter, LoraModule, load_lora, refuse
from registry.maths.lowrank import diff_frob2, frob2, refactor, relative, truncate
from registry.maths.report import MathsReport
from registry.maths.robust import DEFAULT_TRIM, DENSE_RULES, RULES, clip_factors, coordinate_rule

if TYPE_CHECKING:
    from torch import Tensor

METHODS = ("stack", "fedavg")
#: Elements of one row block of the per-site dense deltas of the coordinate-wise rules.
CHUNK = 1 << 22
_BIAS = ".lora_B.bias"


@dataclass(frozen=True)
class _Site:
    index: int  # position among the inputs in canonical order
    adapter: LoraAdapter
    share: float  # wᵢ / Σ w


@dataclass(frozen=True)
class _Result:
    kind: str
    b: Tensor  # float64
    a: Tensor
    error2: float  # ‖written ΔW - the rule's ΔW‖²
    total2: float  # ‖the rule's ΔW‖²
    exact: bool
    shared: bool


@dataclass
class _Tally:
    """What the robust rules did to each input (canonical order)."""

    clipped: list[list[float]]
    trimmed: list[int]
    coordinates: int = 0

    def trim(self, live: Sequence[_Site], dropped: Any, coordinates: int) -> None:
        self.coordinates += coordinates
        for j, site in enumerate(live):
            self.trimmed[site.index] += int(dropped[j])


@dataclass(frozen=True)
class _Plan:
    method: str
    robust: str
    max_rank: int | None
    trim: float
    live: list[_Site] = field(default_factory=list)


def aggregate(
    sites: Sequence[Input],
    out_dir: Path,
    *,
    method: str = "stack",
    robust: str = "none",
    max_rank: int | None = None,
    progress: Progress | None = None,
    trim: float = DEFAULT_TRIM,
) -> MathsReport:
    """Aggregate the sites' adapters (``Input.weight`` = sample count) into a new adapter
    written to ``out_dir`` (which must not exist or be empty). ``trim`` is the fraction
    ``trimmed_mean`` drops each side.

    Raises:
        IncompatibleAdapters: ``context["reason"]`` one of ``no_inputs``, ``unknown_method``,
            ``unknown_robust_rule``, ``robust_needs_stack``, ``invalid_max_rank``,
            ``invalid_trim``, ``invalid_weight``, ``negative_weight``, ``no_samples``,
            ``not_lora``, ``different_bases``, ``dora_not_combinable``, ``mixed_module_kinds``,
            ``shape_mismatch``, ``unequal_ranks`` (fedavg), ``extra_tensors_differ``,
            ``clip_extra_tensors``, ``output_exists``.
    """
    _check_parameters(method, robust, max_rank, trim)
    ordered = _canonical(sites)
    adapters = [load_lora(i.path) for i in ordered]
    check_same_base(adapters)
    check_no_dora(adapters)
    samples = math.fsum(i.weight for i in ordered)
    if samples <= 0:
        raise refuse("no_samples", "the sites' sample counts add up to zero")
    live = [
        _Site(n, adapter, i.weight / samples)
        for n, (i, adapter) in enumerate(zip(ordered, adapters, strict=True))
        if i.weight > 0
    ]
    plan = _Plan(method, robust, max_rank, trim, live)
    tally = _Tally([[] for _ in ordered], [0] * len(ordered))
    names = sorted(set().union(*(s.adapter.modules for s in live)))
    results: dict[str, _Result] = {}
    for done, name in enumerate(names, 1):
        results[name] = _module(name, plan, tally)
        if progress is not None:
            progress(done, len(names))
    extra = _extras(plan)
    config = _config(live[0].adapter, results, extra)
    recipe = _recipe(plan, ordered, results, tally, samples)
    modules = {n: (r.kind, r.a, r.b) for n, r in results.items()}
    report = MathsReport(operation="aggregate", method=method, out_dir=out_dir, recipe=recipe)
    return write_adapter(out_dir, config, modules, report, extra=extra)


def _check_parameters(method: str, robust: str, max_rank: int | None, trim: float) -> None:
    if method not in METHODS:
        raise refuse("unknown_method", f"unknown aggregate method {method!r}", method=method)
    if robust not in RULES:
        raise refuse("unknown_robust_rule", f"unknown robust rule {robust!r}", robust=robust)
    if robust != "none" and method != "stack":
        raise refuse("robust_needs_stack", "robust rules aggregate with method 'stack'")
    if max_rank is not None and max_rank < 1:
        raise refuse("invalid_max_rank", "max_rank must be at least 1", max_rank=max_rank)
    if not 0 <= trim < 0.5:
        raise refuse("invalid_trim", "trim must be in [0, 0.5)", trim=trim)


def _canonical(sites: Sequence[Input]) -> list[Input]:
    """The sites in an order that does not depend on the caller's: by digest (else the sha256
    of the adapter's files), then weight, then ref."""
    if not sites:
        raise refuse("no_inputs", "aggregate needs at least one site")
    for site in sites:
        if not math.isfinite(site.weight):
            raise refuse("invalid_weight", "a sample count must be a finite number", ref=site.ref)
        if site.weight < 0:
            raise refuse("negative_weight", "a sample count cannot be negative", ref=site.ref)
    return sorted(sites, key=lambda s: (s.digest or _sha256(s.path), s.weight, s.ref or ""))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    for name in (CONFIG, WEIGHTS):
        digest.update(hashlib.sha256((path / name).read_bytes()).digest())
    return "sha256:" + digest.hexdigest()


def _module(name: str, plan: _Plan, tally: _Tally) -> _Result:
    """One module's aggregate (float64 factors) and its error against the rule's target."""
    torch = require_torch()
    parts = [(s, s.adapter.modules[name]) for s in plan.live if name in s.adapter.modules]
    kind = _check_parts(name, [m for _, m in parts])
    if plan.robust in DENSE_RULES:
        return _dense(name, kind, parts, plan, tally)
    scales = [s.share * m.scaling for s, m in parts]
    if plan.robust == "clip":
        factors = _clip(name, parts, plan, tally)
        scales = [q * c for q, c in zip(scales, factors, strict=True)]
    a_s = [m.a.double() for _, m in parts]
    b_s = [m.b.double() * q for (_, m), q in zip(parts, scales, strict=True)]
    target_b, target_a = torch.cat(b_s, dim=1), torch.cat(a_s, dim=0)
    shared = all(torch.equal(parts[0][1].a, m.a) for _, m in parts[1:])
    exact = shared or plan.method == "stack"
    if shared:
        b, a = torch.stack(b_s).sum(dim=0), a_s[0]
    elif plan.method == "stack":
        b, a = target_b, target_a
    else:
        if len({m.rank for _, m in parts}) > 1:
            ranks = sorted({m.rank for _, m in parts})
            raise refuse(
                "unequal_ranks", f"{name}: fedavg needs equal ranks", module=name, ranks=ranks
            )
        b = torch.stack(b_s).sum(dim=0)
        a = torch.stack([m.a.double() * s.share for s, m in parts]).sum(dim=0)
    error2 = 0.0 if exact else diff_frob2(b, a, target_b, target_a)
    if plan.max_rank is not None and a.shape[0] > plan.max_rank:
        b, a, cut2 = truncate(b, a, plan.max_rank)
        error2 = cut2 if exact else diff_frob2(b, a, target_b, target_a)
        exact = exact and cut2 == 0.0
    return _Result(kind, b, a, error2, frob2(target_b, target_a), exact, shared)


def _check_parts(name: str, modules: Sequence[LoraModule]) -> str:
    kinds = {m.kind for m in modules}
    if len(kinds) > 1:
        raise refuse("mixed_module_kinds", f"{name}: embedding and linear LoRA", module=name)
    shapes = {(int(m.b.shape[0]), int(m.a.shape[1])) for m in modules}
    if len(shapes) > 1:
        raise refuse("shape_mismatch", f"{name}: the sites' modules differ in shape", module=name)
    return kinds.pop()


def _clip(
    name: str, parts: Sequence[tuple[_Site, LoraModule]], plan: _Plan, tally: _Tally
) -> list[float]:
    """Clip factors of ``parts``: site norms ``|sᵢ|·sqrt(trace((BᵀB)(AAᵀ)))``, with a zero
    norm for each live site that lacks the module."""
    norms = {
        s.index: abs(m.scaling) * math.sqrt(frob2(m.b.double(), m.a.double())) for s, m in parts
    }
    factors = clip_factors([norms.get(s.index, 0.0) for s in plan.live])
    by_index = {s.index: f for s, f in zip(plan.live, factors, strict=True)}
    for s, _ in parts:
        if by_index[s.index] < 1.0:
            tally.clipped[s.index].append(by_index[s.index])
    return [by_index[s.index] for s, _ in parts]


def _dense(
    name: str, kind: str, parts: Sequence[tuple[_Site, LoraModule]], plan: _Plan, tally: _Tally
) -> _Result:
    """A coordinate-wise rule on the dense per-site deltas, row block by row block, then
    re-factored by SVD to ``max_rank`` or ``min(Σ rᵢ, out, in)``."""
    torch = require_torch()
    out, width = int(parts[0][1].b.shape[0]), int(parts[0][1].a.shape[1])
    weights = torch.tensor([s.share for s in plan.live], dtype=torch.float64)
    held = {s.index: m for s, m in parts}
    step = max(1, CHUNK // (len(plan.live) * width))
    dense = torch.empty(out, width, dtype=torch.float64)
    for start in range(0, out, step):
        rows = slice(start, min(out, start + step))
        values = torch.zeros(len(plan.live), rows.stop - start, width, dtype=torch.float64)
        for j, site in enumerate(plan.live):
            m = held.get(site.index)
            if m is not None:
                values[j] = (m.b[rows].double() @ m.a.double()) * m.scaling
        dense[rows], dropped = coordinate_rule(plan.robust, values, weights, plan.trim)
        if dropped is not None:
            tally.trim(plan.live, dropped, int(values[0].numel()))
    rank = plan.max_rank or min(sum(m.rank for _, m in parts), out, width)
    b, a, error2 = refactor(dense, rank)
    return _Result(kind, b, a, error2, float((dense**2).sum()), error2 == 0.0, False)


def _extras(plan: _Plan) -> dict[str, Tensor]:
    """The sites' other tensors: LoRA biases (``lora_B.bias``, a change scaled by ``sᵢ``; zero
    where a site lacks it) and full copies (``modules_to_save``, saved biases; every site must
    hold them), combined as the weighted mean or by the coordinate-wise rule."""
    torch = require_torch()
    keys = sorted(set().union(*(s.adapter.extra for s in plan.live)))
    if keys and plan.robust == "clip":
        raise refuse("clip_extra_tensors", "clip is defined on LoRA changes only", keys=keys[:5])
    weights = torch.tensor([s.share for s in plan.live], dtype=torch.float64)
    combined: dict[str, Tensor] = {}
    for key in keys:
        held = [s.adapter.extra[key] for s in plan.live if key in s.adapter.extra]
        if len({tuple(t.shape) for t in held}) > 1 or (
            not key.endswith(_BIAS) and len(held) < len(plan.live)
        ):
            raise refuse("extra_tensors_differ", f"{key}: not the same in every site", key=key)
        values = torch.stack([_extra_value(s, key, held[0]) for s in plan.live])
        if plan.robust == "none":
            shaped = weights.reshape(-1, *([1] * (values.dim() - 1)))
            result = (values * shaped).sum(dim=0)
        else:
            result, _ = coordinate_rule(plan.robust, values, weights, plan.trim)
        combined[key] = result.to(held[0].dtype)
    return combined


def _extra_value(site: _Site, key: str, like: Tensor) -> Tensor:
    tensor = site.adapter.extra.get(key)
    if not key.endswith(_BIAS):
        return site.adapter.extra[key].double()
    module = site.adapter.modules.get(key.removeprefix("base_model.model.")[: -len(_BIAS)])
    if tensor is None or module is None:
        return like.double() * 0
    return tensor.double() * module.scaling


def _config(
    first: LoraAdapter, results: dict[str, _Result], extra: dict[str, Any]
) -> dict[str, Any]:
    if not results:
        raise refuse("no_modules", "the sites hold no LoRA module")
    ranks = {n: int(r.a.shape[0]) for n, r in results.items()}
    top = max(ranks.values())
    differ = {n: k for n, k in ranks.items() if k != top}
    config = first.raw | {
        "r": top,
        "lora_alpha": top,
        "use_rslora": False,
        "rank_pattern": differ,
        "alpha_pattern": dict(differ),
        "target_modules": sorted({n.rsplit(".", 1)[-1] for n in results}),
    }
    if any(k.endswith(_BIAS) for k in extra):
        config["lora_bias"] = True
    return config


def _recipe(
    plan: _Plan,
    ordered: Sequence[Input],
    results: dict[str, _Result],
    tally: _Tally,
    samples: float,
) -> dict[str, Any]:
    params: dict[str, Any] = {"robust": plan.robust, "max_rank": plan.max_rank}
    if plan.robust == "trimmed_mean":
        params["trim"] = plan.trim
    recipe = base_recipe("aggregate", plan.method, ordered, **params)
    error2 = math.fsum(r.error2 for r in results.values())
    total2 = math.fsum(r.total2 for r in results.values())
    recipe |= {
        "exact": all(r.exact for r in results.values()),
        "error": relative(error2, total2),
        "error_max_module": max(relative(r.error2, r.total2) for r in results.values()),
        "ffa": all(r.shared for r in results.values()),
        "rank": max(int(r.a.shape[0]) for r in results.values()),
        "sites": len(plan.live),
        "samples": samples,
    }
    if plan.robust == "clip":
        recipe["clipped"] = [
            {"modules": len(f), "min_factor": min(f, default=1.0)} for f in tally.clipped
        ]
    if plan.robust == "trimmed_mean":
        recipe["trimmed"] = [
            {"coordinates": n, "fraction": n / tally.coordinates if tally.coordinates else 0.0}
            for n in tally.trimmed
        ]
    return recipe
