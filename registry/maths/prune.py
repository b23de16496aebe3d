"""peft's task-merging helpers (``peft.utils.merge_utils``) on torch tensors, with one change:
random pruning draws from an explicit ``torch.Generator`` instead of torch's global one.

Each function computes exactly what its peft twin does, operation for operation, so that the
deterministic methods give bit-identical results: ``linear`` (task arithmetic, a weighted sum),
``magnitude_prune`` (keep the top ``density`` fraction by ``|value|``, weighted sum), ``ties``
(magnitude prune, elect a sign per element, average the agreeing weighted values),
``dare_linear`` (keep each value with probability ``density``, rescale by ``1/density``,
weighted sum) and ``dare_ties`` (DARE pruning, then the TIES election).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from registry.maths import require_torch

if TYPE_CHECKING:
    from torch import Generator, Tensor

#: The kinds :func:`merge` knows, and those that prune with ``density``.
KINDS = ("linear", "ties", "dare_linear", "dare_ties", "magnitude_prune")
DENSITY_KINDS = frozenset({"ties", "dare_linear", "dare_ties", "magnitude_prune"})
SIGN_KINDS = frozenset({"ties", "dare_ties"})
RANDOM_KINDS = frozenset({"dare_linear", "dare_ties"})
SIGN_METHODS = ("total", "frequency")


def module_seed(seed: int, module: str) -> int:
    """The seed of one module's generator: a hash of the run's seed and the module's path, so
    a module's masks depend neither on the order modules are visited in nor on which other
    modules the inputs adapt."""
    digest = hashlib.sha256(f"{seed}:{module}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def generator(seed: int, module: str) -> Generator:
    torch = require_torch()
    gen: Generator = torch.Generator().manual_seed(module_seed(seed, module))
    return gen


def magnitude_prune(tensor: Tensor, density: float) -> Tensor:
    """Keep the ``int(density · numel)`` values of largest magnitude, zero the rest."""
    torch = require_torch()
    if density >= 1:
        return tensor
    mask = torch.zeros_like(tensor).reshape(-1)
    k = int(density * tensor.numel())
    top_k = torch.topk(tensor.abs().reshape(-1), k=k, largest=True)
    mask[top_k[1]] = 1
    kept: Tensor = tensor * mask.reshape(tensor.shape)
    return kept


def random_prune(tensor: Tensor, density: float, gen: Generator) -> Tensor:
    """Keep each value with probability ``density`` (a Bernoulli mask drawn from ``gen``) and
    rescale what is kept by ``1/density``, so the expected value is the tensor itself."""
    torch = require_torch()
    if density >= 1:
        return tensor
    mask = torch.bernoulli(torch.full_like(tensor, fill_value=density), generator=gen)
    kept: Tensor = tensor * mask / density
    return kept


def majority_sign_mask(stacked: Tensor, method: str) -> Tensor:
    """Per element, whether each task's sign is the elected one: the sign of the sum
    (``total``) or of the count of signs (``frequency``); zero elects +."""
    torch = require_torch()
    sign = stacked.sign()
    magnitude = stacked.sum(dim=0) if method == "total" else sign.sum(dim=0)
    majority = torch.where(magnitude >= 0, 1, -1)
    agrees: Tensor = sign == majority
    return agrees


def merge(
    kind: str,
    tensors: Sequence[Tensor],
    weights: Tensor,
    *,
    density: float | None = None,
    sign_method: str = "total",
    gen: Generator | None = None,
) -> Tensor:
    """Merge task tensors of one shape with per-task ``weights`` (a 1-D float tensor)."""
    torch = require_torch()
    pruned = list(tensors)
    if kind in ("ties", "magnitude_prune"):
        assert density is not None
        pruned = [magnitude_prune(t, density) for t in pruned]
    elif kind in RANDOM_KINDS:
        assert density is not None
        assert gen is not None
        pruned = [random_prune(t, density, gen) for t in pruned]
    stacked = torch.stack(pruned, dim=0)
    weighted: Tensor = stacked * weights.view(
        weights.shape + (1,) * (stacked.dim() - weights.dim())
    )
    if kind not in SIGN_KINDS:
        return weighted.sum(dim=0)
    mask = majority_sign_mask(stacked, sign_method)
    merged: Tensor = (weighted * mask).sum(dim=0) / torch.clamp(mask.sum(dim=0), min=1.0)
    return merged
