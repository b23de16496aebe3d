"""Truncated SVD of a LoRA combination, from its low-rank factors or from a dense delta.

``svd`` combines linearly, so the sum ``Σ wᵢ·sᵢ·Bᵢ·Aᵢ`` is ``B_cat @ A_cat`` with
``B_cat = [w₁s₁B₁ …]`` (``[out, R]``) and ``A_cat = [A₁; …]`` (``[R, in]``), ``R = Σ rᵢ``.
Its SVD comes from two thin QRs and the SVD of an ``R x R`` core, never the ``out x in``
matrix: ``B_cat = Q_B·R_B``, ``A_catᵀ = Q_A·R_A``, ``R_B·R_Aᵀ = U·S·Vᵀ``, so
``B_cat @ A_cat = (Q_B·U)·S·(Q_A·V)ᵀ``. The pruning methods (``ties_svd`` …) act elementwise
on the dense delta and go through :func:`dense_svd`. Both keep the top ``rank`` singular
triplets as ``B = U_k·S_k``, ``A = V_kᵀ`` (peft's convention), zero-padded to ``rank`` when the
combination has fewer, and say how much truncation discarded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from registry.maths import require_torch

if TYPE_CHECKING:
    from torch import Tensor


@dataclass(frozen=True)
class Truncated:
    """``b @ a`` is the best rank-``rank`` approximation of the combination;
    ``discarded``/``total`` are the squared Frobenius norms of what was cut and of the whole."""

    b: Tensor  # [out, rank], float32
    a: Tensor  # [rank, in], float32
    discarded: float
    total: float


def lowrank_svd(b_cat: Tensor, a_cat: Tensor, rank: int) -> Truncated:
    """Truncated SVD of ``b_cat @ a_cat`` from the factors (computed in float64)."""
    torch = require_torch()
    q_b, r_b = torch.linalg.qr(b_cat.to(torch.float64))
    q_a, r_a = torch.linalg.qr(a_cat.to(torch.float64).T)
    u, s, vh = torch.linalg.svd(r_b @ r_a.T, full_matrices=False)
    return _truncate(q_b @ u, s, vh @ q_a.T, rank)


def dense_svd(delta: Tensor, rank: int) -> Truncated:
    """Truncated SVD of a dense ``[out, in]`` delta (in its own dtype, as peft does)."""
    torch = require_torch()
    u, s, vh = torch.linalg.svd(delta, full_matrices=False)
    return _truncate(u, s, vh, rank)


def _truncate(u: Tensor, s: Tensor, vh: Tensor, rank: int) -> Truncated:
    torch = require_torch()
    k = min(rank, int(s.shape[0]))
    b = torch.zeros(u.shape[0], rank, dtype=torch.float32)
    a = torch.zeros(rank, vh.shape[1], dtype=torch.float32)
    b[:, :k] = (u[:, :k] * s[:k]).to(torch.float32)
    a[:k] = vh[:k].to(torch.float32)
    squares = s.to(torch.float64) ** 2
    return Truncated(b, a, float(squares[k:].sum()), float(squares.sum()))
