"""Small LoRA adapters written with ``save_lora`` for the aggregate tests, and the dense
weight changes the aggregate must equal."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from registry.maths.combine import Input
from registry.maths.lora import WEIGHTS, load_lora, save_lora

Q = "model.layers.0.self_attn.q_proj"
V = "model.layers.0.self_attn.v_proj"
SHAPES = {Q: (12, 10), V: (8, 10)}  # [out, in]


def write_site(
    path: Path,
    factors: dict[str, tuple[torch.Tensor, torch.Tensor]],
    *,
    alpha: float = 8,
    rslora: bool = False,
    base: str = "tiny",
    extra: dict[str, torch.Tensor] | None = None,
    **config: Any,
) -> Path:
    """An adapter directory with ``factors {module: (A, B)}``; ``r`` is the first module's
    rank and ``rank_pattern`` names the others."""
    ranks = {name: int(a.shape[0]) for name, (a, _) in factors.items()}
    r = next(iter(ranks.values()))
    raw = {
        "peft_type": "LORA",
        "r": r,
        "lora_alpha": alpha,
        "use_rslora": rslora,
        "rank_pattern": {n: k for n, k in ranks.items() if k != r},
        "target_modules": sorted({n.rsplit(".", 1)[-1] for n in factors}),
        "base_model_name_or_path": base,
    } | config
    modules = {name: ("linear", a, b) for name, (a, b) in factors.items()}
    save_lora(path, raw, modules, extra=extra)
    return path


def random_factors(
    gen: torch.Generator, ranks: dict[str, int], scale: float = 1.0
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for name, r in ranks.items():
        rows, cols = SHAPES[name]
        a = torch.randn(r, cols, generator=gen) * scale
        out[name] = (a, torch.randn(rows, r, generator=gen) * scale)
    return out


def deltas(path: Path) -> dict[str, torch.Tensor]:
    """Every module's ``scaling · B @ A`` in float64."""
    return {
        n: (m.b.double() @ m.a.double()) * m.scaling for n, m in load_lora(path).modules.items()
    }


def weighted_mean(sites: list[Input]) -> dict[str, torch.Tensor]:
    """``Σ wᵢ·ΔWᵢ / Σ wᵢ`` per module, a module a site lacks counting as zero."""
    total = sum(s.weight for s in sites)
    mean: dict[str, torch.Tensor] = {}
    for site in sites:
        for name, d in deltas(site.path).items():
            mean[name] = mean.get(name, torch.zeros_like(d)) + d * (site.weight / total)
    return mean


def rel(got: torch.Tensor, want: torch.Tensor) -> float:
    return float(torch.linalg.norm(got - want) / torch.linalg.norm(want))


def overall_rel(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> float:
    """Relative Frobenius distance over all modules (missing ones as zero)."""
    names = set(got) | set(want)
    err = sum(float(torch.linalg.norm(got[n] - want[n]) ** 2) for n in names)
    total = sum(float(torch.linalg.norm(want[n]) ** 2) for n in names)
    return float((err / total) ** 0.5)


def sha(path: Path) -> str:
    return hashlib.sha256((path / WEIGHTS).read_bytes()).hexdigest()
