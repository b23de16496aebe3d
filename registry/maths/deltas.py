"""Per-method weight edits with the semantics of peft 0.21.2's ``merge_and_unload``.

Each edit changes one base tensor (a weight or a bias) given the adapter tensors it names; the
merge applies a tensor's edits in order, in float32 (float64 for a float64 tensor), and rounds
once to the output dtype. ``weight`` is always the tensor as stored in the checkpoint:
``nn.Linear`` ``[out, in]``, transformers ``Conv1D`` ``[in, out]`` (peft's ``fan_in_fan_out``),
``nn.Embedding`` ``[num_embeddings, dim]``.

The formulas (peft ``tuners/*/layer.py``, ``get_delta_weight`` and ``merge``):

* LoRA: ``W + transpose(B @ A, fan_in_fan_out) * s``, ``s = alpha / r`` (``alpha / sqrt(r)``
  with rsLoRA; ``r``/``alpha`` from ``rank_pattern``/``alpha_pattern``); embeddings
  ``W + (B @ A).T * s``; ``lora_bias``: ``b + lora_B.bias * s``.
* DoRA: ``W' = W + delta``; ``(magnitude / ||W'||)`` scales each output row (Conv1D and
  embedding: each column), the norm taken over the other axis of the unmerged weight plus delta.
* AdaLoRA: ``W + transpose(B @ (A * E)) * alpha / (ranknum + 1e-5)``; ``ranknum`` is ``init_r``
  (peft restores it after cutting the ranks of ``rank_pattern`` on load).
* IA3: ``W * l`` (``l`` ``[out, 1]`` scales output rows, a feed-forward ``[1, in]`` input
  columns; transposed for Conv1D); a non-feed-forward module's bias ``b * l``.
* LoHa: ``W + ((w1_a @ w1_b) * (w2_a @ w2_b)) * alpha / r``, reshaped to ``W``.
* LoKr: ``W + kron(w1, w2) * alpha / r`` (``w1 = w1_a @ w1_b`` and ``w2 = w2_a @ w2_b`` when
  factorised), reshaped to ``W``.
* A saved copy (``modules_to_save``, ``bias="all"|"lora_only"``, ``base_layer.weight``)
  replaces the tensor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import torch

#: Adapter tensor name -> that tensor, in the compute dtype and on the weight's device.
Loader = Callable[[str], "torch.Tensor"]


@dataclass(frozen=True)
class Edit:
    """One change to one base tensor; ``module`` names the adapter's module (for errors).

    ``apply`` returns the edited tensor and may edit ``weight`` in place to do so (the merge hands
    it a tensor of its own).
    """

    module: str
    #: True for a saved copy (applied before every delta of the same tensor).
    replaces: ClassVar[bool] = False

    def apply(self, weight: torch.Tensor, load: Loader) -> torch.Tensor:
        raise NotImplementedError


@dataclass(frozen=True)
class Replace(Edit):
    """A saved copy that replaces the base tensor."""

    tensor: str
    replaces: ClassVar[bool] = True

    def apply(self, weight: torch.Tensor, load: Loader) -> torch.Tensor:
        new = load(self.tensor)
        if new.shape != weight.shape:
            raise ValueError(f"saved copy {list(new.shape)} != base {list(weight.shape)}")
        return new


def lora_delta(a: torch.Tensor, b: torch.Tensor, scaling: float, transpose: bool) -> torch.Tensor:
    product = b @ a
    return (product.T if transpose else product) * scaling


@dataclass(frozen=True)
class LoraDelta(Edit):
    """Plain LoRA; ``transpose`` for Conv1D (``fan_in_fan_out``) and embeddings."""

    a: str
    b: str
    scaling: float
    transpose: bool

    def factors(self, load: Loader) -> tuple[torch.Tensor, torch.Tensor]:
        """``(left, right)`` with ``delta == left @ right * scaling`` in the stored layout: row
        ``i`` of the delta needs only row ``i`` of ``left``, so a weight can be edited by rows.
        """
        a, b = load(self.a), load(self.b)
        # (B @ A).T == A.T @ B.T for Conv1D and embeddings: still one product, rows of A.T.
        return (a.T, b.T) if self.transpose else (b, a)

    def apply(self, weight: torch.Tensor, load: Loader) -> torch.Tensor:
        return add_product(weight, *self.factors(load), self.scaling)


def add_product(
    weight: torch.Tensor, left: torch.Tensor, right: torch.Tensor, scaling: float
) -> torch.Tensor:
    """``weight += left @ right * scaling`` in place and fused: no delta-sized tensor."""
    if (left.shape[0], right.shape[1]) != tuple(weight.shape):
        shape = [left.shape[0], right.shape[1]]
        raise ValueError(f"delta {shape} != weight {list(weight.shape)}")
    return weight.addmm_(left, right, alpha=scaling)


@dataclass(frozen=True)
class DoraMerge(Edit):
    """DoRA: LoRA delta, then the magnitude over the norm of the unmerged weight plus delta."""

    a: str
    b: str
    magnitude: str
    scaling: float
    transpose: bool

    def apply(self, weight: torch.Tensor, load: Loader) -> torch.Tensor:
        import torch

        delta = lora_delta(load(self.a), load(self.b), self.scaling, self.transpose)
        merged = weight + delta
        # Rows are outputs for nn.Linear; Conv1D and embeddings hold them as columns.
        norm = torch.linalg.norm(merged.T if self.transpose else merged, dim=1)
        factor: torch.Tensor = load(self.magnitude).reshape(-1) / norm
        return (factor.view(1, -1) if self.transpose else factor.view(-1, 1)) * merged


@dataclass(frozen=True)
class AddScaled(Edit):
    """``b + vector * scaling``: LoRA's ``lora_bias`` (``lora_B.bias``)."""

    vector: str
    scaling: float

    def apply(self, weight: torch.Tensor, load: Loader) -> torch.Tensor:
        return weight + load(self.vector) * self.scaling


@dataclass(frozen=True)
class AdaLoraDelta(Edit):
    a: str
    b: str
    e: str
    scaling: float
    ranknum: float
    transpose: bool

    def apply(self, weight: torch.Tensor, load: Loader) -> torch.Tensor:
        import torch

        product = load(self.b) @ (load(self.a) * load(self.e))
        ranknum: torch.Tensor = torch.full(
            (1,), self.ranknum, dtype=weight.dtype, device=weight.device
        )
        delta = (product.T if self.transpose else product) * self.scaling / (ranknum + 1e-5)
        return weight + delta


@dataclass(frozen=True)
class Ia3Scale(Edit):
    """IA3 on a weight: ``W * l`` (``l`` transposed for Conv1D)."""

    vector: str
    transpose: bool

    def apply(self, weight: torch.Tensor, load: Loader) -> torch.Tensor:
        vector = load(self.vector)
        return weight * (vector.T if self.transpose else vector)


@dataclass(frozen=True)
class Ia3Bias(Edit):
    """IA3 on the bias of a non-feed-forward module: ``b * l``."""

    vector: str

    def apply(self, weight: torch.Tensor, load: Loader) -> torch.Tensor:
        return weight * load(self.vector).reshape(weight.shape)


@dataclass(frozen=True)
class LohaDelta(Edit):
    w1_a: str
    w1_b: str
    w2_a: str
    w2_b: str
    scaling: float

    def apply(self, weight: torch.Tensor, load: Loader) -> torch.Tensor:
        import torch

        w1 = load(self.w1_a) @ load(self.w1_b)
        w2 = load(self.w2_a) @ load(self.w2_b)
        scale: torch.Tensor = torch.tensor(self.scaling, dtype=w1.dtype, device=w1.device)
        return weight + ((w1 * w2) * scale).reshape(weight.shape)


@dataclass(frozen=True)
class LokrDelta(Edit):
    """LoKr; ``w1``/``w2`` name one full factor or the two halves of a factorised one."""

    w1: tuple[str, ...]
    w2: tuple[str, ...]
    scaling: float

    def apply(self, weight: torch.Tensor, load: Loader) -> torch.Tensor:
        import torch

        w1, w2 = (_factor(names, load) for names in (self.w1, self.w2))
        delta: torch.Tensor = torch.kron(w1, w2.contiguous()) * self.scaling
        return weight + delta.reshape(weight.shape)


def _factor(names: tuple[str, ...], load: Loader) -> torch.Tensor:
    if len(names) == 1:
        return load(names[0])
    return load(names[0]) @ load(names[1])
