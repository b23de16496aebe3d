"""Robust aggregation rules on per-site weight changes (never on A and B, which are not unique:
``B A = (B M)(M⁻¹ A)`` for any invertible ``M``).

* ``clip``: each site's ``ΔWᵢ`` is scaled to at most the median of the site norms.
* ``trimmed_mean``: coordinate-wise, the ``k`` lowest and ``k`` highest site values are dropped
  (``k = max(1, floor(β·n))`` for ``n ≥ 3`` sites, never leaving fewer than one value; ``k = 0``
  below three sites) and the rest averaged with the sites' sample counts as weights.
* ``median``: coordinate-wise weighted median (sample counts as weights): the value where the
  cumulative weight of the sorted values reaches half the total; when it lands exactly on half,
  the mean of the two values around it (the ordinary median for equal weights).

A site that lacks a module contributes a zero change to it, in all three rules.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING

from registry.maths import require_torch

if TYPE_CHECKING:
    from torch import Tensor

RULES = ("none", "clip", "trimmed_mean", "median")
DENSE_RULES = ("trimmed_mean", "median")
DEFAULT_TRIM = 0.1


def clip_factors(norms: Sequence[float]) -> list[float]:
    """Per-site factors ``min(1, τ / ‖ΔWᵢ‖)`` with ``τ`` the median of ``norms``."""
    tau = statistics.median(norms)
    return [1.0 if n <= tau else tau / n for n in norms]


def trim_count(sites: int, fraction: float) -> int:
    """How many values each side ``trimmed_mean`` drops among ``sites`` values."""
    if sites < 3:
        return 0
    return min(max(1, math.floor(fraction * sites)), (sites - 1) // 2)


def trimmed_mean(values: Tensor, weights: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Coordinate-wise trimmed mean of ``values [n, ...]`` with site ``weights [n]``; also how
    many coordinates each site had dropped (``[n]`` counts)."""
    torch = require_torch()
    n = int(values.shape[0])
    ordered, index = torch.sort(values, dim=0, stable=True)
    kept = slice(k, n - k)
    w = weights[index[kept]]
    mean = (ordered[kept] * w).sum(dim=0) / w.sum(dim=0)
    dropped = torch.cat([index[:k].reshape(-1), index[n - k :].reshape(-1)])
    return mean, torch.bincount(dropped, minlength=n)


def weighted_median(values: Tensor, weights: Tensor) -> Tensor:
    """Coordinate-wise weighted median of ``values [n, ...]`` with site ``weights [n]``."""
    torch = require_torch()
    ordered, index = torch.sort(values, dim=0, stable=True)
    cumulative = torch.cumsum(weights[index], dim=0)
    half = float(weights.sum()) / 2
    slack = 1e-12 * half
    lower = (cumulative >= half - slack).to(torch.int8).argmax(dim=0, keepdim=True)
    upper = (cumulative > half + slack).to(torch.int8).argmax(dim=0, keepdim=True)
    pair = ordered.gather(0, lower) + ordered.gather(0, upper)
    median: Tensor = (pair / 2).squeeze(0)
    return median


def coordinate_rule(
    rule: str, values: Tensor, weights: Tensor, trim: float
) -> tuple[Tensor, Tensor | None]:
    """Apply a dense rule (``trimmed_mean`` or ``median``) across the sites of ``values``;
    returns the result and, for ``trimmed_mean``, the per-site counts of dropped coordinates."""
    if rule == "trimmed_mean":
        return trimmed_mean(values, weights, trim_count(int(values.shape[0]), trim))
    return weighted_median(values, weights), None
