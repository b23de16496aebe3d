"""Frobenius norms and truncations of low-rank products ``B @ A`` computed from the factors.

A LoRA delta ``B @ A`` (``B [out, r]``, ``A [r, in]``) is never materialised here: its squared
Frobenius norm is ``trace((BᵀB)(AAᵀ))``, two ``r x r`` matrices, and its best rank-``k``
approximation comes from QR of each factor and the SVD of the small ``r x r`` core. Everything
is computed in float64 (callers pass float64 factors).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from registry.maths import require_torch

if TYPE_CHECKING:
    from torch import Tensor


def frob2(b: Tensor, a: Tensor) -> float:
    """``‖B @ A‖_F²`` as ``Σ (BᵀB) ∘ (AAᵀ)`` (the trace of their product: both are symmetric)."""
    return max(0.0, float(((b.T @ b) * (a @ a.T)).sum()))


def diff_frob2(b1: Tensor, a1: Tensor, b2: Tensor, a2: Tensor) -> float:
    """``‖B₁A₁ - B₂A₂‖_F²``: the difference is itself the product ``[B₁, -B₂] @ [A₁; A₂]``."""
    torch = require_torch()
    return frob2(torch.cat([b1, -b2], dim=1), torch.cat([a1, a2], dim=0))


def truncate(b: Tensor, a: Tensor, rank: int) -> tuple[Tensor, Tensor, float]:
    """The best rank-``rank`` factors of ``B @ A`` and the squared Frobenius error they make.

    ``B = Q_b R_b`` and ``Aᵀ = Q_a R_a`` (reduced QR), so ``B @ A = Q_b (R_b R_aᵀ) Q_aᵀ``; the
    SVD ``U S Vᵀ`` of the small core gives ``B' = Q_b U_k diag(S_k)``, ``A' = V_kᵀ Q_aᵀ`` and the
    error ``Σ_{j>k} S_j²`` (Eckart-Young). Nothing of size ``out x in`` is formed.
    """
    torch = require_torch()
    q_b, r_b = torch.linalg.qr(b, mode="reduced")
    q_a, r_a = torch.linalg.qr(a.T, mode="reduced")
    u, s, vh = torch.linalg.svd(r_b @ r_a.T, full_matrices=False)
    k = min(rank, int(s.shape[0]))
    error2 = float((s[k:] ** 2).sum())
    return (q_b @ u[:, :k]) * s[:k], vh[:k] @ q_a.T, error2


def refactor(dense: Tensor, rank: int) -> tuple[Tensor, Tensor, float]:
    """Rank-``rank`` factors ``(B, A)`` of a dense matrix by SVD (``B = U_k diag(S_k)``,
    ``A = V_kᵀ``, as peft's ``svd`` combination) and the squared Frobenius error they make."""
    torch = require_torch()
    u, s, vh = torch.linalg.svd(dense, full_matrices=False)
    k = min(rank, int(s.shape[0]))
    error2 = float((s[k:] ** 2).sum())
    return u[:, :k] * s[:k], vh[:k], error2


def relative(error2: float, total2: float) -> float:
    """``sqrt(error² / total²)``, 0 for a zero target (nothing to be wrong about)."""
    return math.sqrt(error2 / total2) if total2 > 0 else 0.0
