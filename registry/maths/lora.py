"""LoRA adapters as factors per module: read a saved adapter, write one back.

An adapter directory holds ``adapter_config.json`` and ``adapter_model.safetensors`` whose
tensors are named ``base_model.model.<module>.lora_A.weight`` ([r, in]) and
``...lora_B.weight`` ([out, r]); embedding LoRA saves ``lora_embedding_A`` ([r, rows]) and
``lora_embedding_B`` ([dim, r]). Adapters are small, so they are read whole (the base, which is
not, is streamed by :mod:`registry.maths.merge`). Factors are held in float32; the module's
``scaling`` (``alpha / r``, ``alpha / sqrt(r)`` with rsLoRA, per-module patterns applied) is kept
beside them, so that ``delta = scaling · B @ A`` is the module's weight change exactly as peft
computes it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.errors import IncompatibleAdapters
from registry.maths import require_torch
from registry.validation.config import AdapterConfig, parse_config
from registry.validation.matching import pattern_lookup

if TYPE_CHECKING:
    from torch import Tensor

CONFIG = "adapter_config.json"
WEIGHTS = "adapter_model.safetensors"
PREFIX = "base_model.model."
_FACTORS = {
    ".lora_A.weight": ("linear", "a"),
    ".lora_B.weight": ("linear", "b"),
    ".lora_embedding_A": ("embedding", "a"),
    ".lora_embedding_B": ("embedding", "b"),
}


def refuse(reason: str, detail: str, **context: Any) -> IncompatibleAdapters:
    """An ``incompatible_adapters`` error with a stable ``context["reason"]``."""
    return IncompatibleAdapters(detail, context={"reason": reason, **context})


@dataclass(frozen=True)
class LoraModule:
    """One adapted module: ``delta = scaling · B @ A`` in the module's ``[out, in]`` orientation
    (an embedding's delta is ``(B @ A).T``; a ``fan_in_fan_out`` module's weight is stored
    transposed, see :attr:`LoraAdapter.fan_in_fan_out`)."""

    name: str
    kind: str  # "linear" or "embedding"
    a: Tensor  # [r, in], float32
    b: Tensor  # [out, r], float32
    scaling: float
    alpha: float
    #: peft's ``get_delta_weight`` returns ``delta.T`` here (the weight is ``[in, out]``).
    fan_in_fan_out: bool = False

    @property
    def rank(self) -> int:
        return int(self.a.shape[0])

    def delta(self) -> Tensor:
        """The module's weight change ``scaling · B @ A``, float32, ``[out, in]``."""
        return (self.b @ self.a) * self.scaling


@dataclass(frozen=True)
class LoraAdapter:
    """A LoRA adapter read from a directory: its config (typed and raw), factors per module,
    and every other tensor it saved (``modules_to_save`` copies, LoRA biases, DoRA
    magnitudes) under its saved name."""

    config: AdapterConfig
    modules: dict[str, LoraModule]
    extra: dict[str, Tensor] = field(default_factory=dict)

    @property
    def raw(self) -> dict[str, Any]:
        return dict(self.config.raw)

    @property
    def use_rslora(self) -> bool:
        return self.config.use_rslora

    @property
    def use_dora(self) -> bool:
        return self.config.use_dora

    @property
    def fan_in_fan_out(self) -> bool:
        return self.config.fan_in_fan_out


def scaling_for(alpha: float, rank: int, *, rslora: bool) -> float:
    """peft's LoRA scaling: ``alpha / r``, or ``alpha / sqrt(r)`` with rsLoRA."""
    return alpha / math.sqrt(rank) if rslora else alpha / rank


def _split(key: str) -> tuple[str, str, str] | None:
    """``base_model.model.<module>.lora_A.weight`` → (module, kind, "a"|"b"), else None."""
    if not key.startswith(PREFIX):
        return None
    for suffix, (kind, which) in _FACTORS.items():
        if key.endswith(suffix):
            return key[len(PREFIX) : -len(suffix)], kind, which
    return None


def _module(cfg: AdapterConfig, name: str, kind: str, a: Tensor, b: Tensor) -> LoraModule:
    rank = int(a.shape[0])
    if b.shape[-1] != rank:
        raise refuse("shape_mismatch", f"{name}: lora_B has rank {b.shape[-1]}, lora_A {rank}")
    alpha = pattern_lookup(cfg, cfg.alpha_pattern, name)
    alpha = float(cfg.lora_alpha if alpha is None else alpha)
    scaling = scaling_for(alpha, rank, rslora=cfg.use_rslora)
    return LoraModule(name, kind, a, b, scaling, alpha, cfg.fan_in_fan_out and kind == "linear")


def load_lora(path: Path) -> LoraAdapter:
    """Read a LoRA adapter directory (factors as float32).

    Raises:
        IncompatibleAdapters: ``not_lora`` for another peft type; ``unpaired_factor`` or
            ``shape_mismatch`` for a module whose A and B do not make a pair.
        AdapterInvalid: the config does not parse (see ``registry.validation.config``).
    """
    torch = require_torch()
    from safetensors.torch import load_file

    cfg = parse_config((path / CONFIG).read_bytes())
    if cfg.peft_type != "LORA":
        raise refuse(
            "not_lora", f"{path.name}: a {cfg.peft_type} adapter, not LoRA", peft_type=cfg.peft_type
        )
    factors: dict[tuple[str, str], dict[str, Tensor]] = {}
    extra: dict[str, Tensor] = {}
    for key, tensor in load_file(str(path / WEIGHTS)).items():
        split = _split(key)
        if split is None:
            extra[key] = tensor
            continue
        name, kind, which = split
        factors.setdefault((name, kind), {})[which] = tensor.to(torch.float32)
    modules: dict[str, LoraModule] = {}
    for (name, kind), pair in sorted(factors.items()):
        if set(pair) != {"a", "b"}:
            raise refuse(
                "unpaired_factor", f"{name}: lora_A and lora_B must both be saved", module=name
            )
        modules[name] = _module(cfg, name, kind, pair["a"], pair["b"])
    return LoraAdapter(cfg, modules, extra)


def save_lora(
    out_dir: Path,
    config: Mapping[str, Any],
    modules: Mapping[str, tuple[str, Tensor, Tensor]],
    *,
    extra: Mapping[str, Tensor] | None = None,
    dtype: Any = None,
) -> list[str]:
    """Write an adapter directory: ``config`` as ``adapter_config.json`` (keys sorted) and the
    factors ``{module: (kind, A, B)}`` (plus ``extra`` tensors) as ``adapter_model.safetensors``,
    cast to ``dtype`` (default float32). The same inputs give the same bytes. Returns the file
    names written."""
    torch = require_torch()
    from safetensors.torch import save_file

    dtype = dtype or torch.float32
    tensors: dict[str, Tensor] = {}
    for name, (kind, a, b) in modules.items():
        a_key, b_key = (
            (".lora_A.weight", ".lora_B.weight")
            if kind == "linear"
            else (".lora_embedding_A", ".lora_embedding_B")
        )
        tensors[PREFIX + name + a_key] = a.to(dtype).contiguous()
        tensors[PREFIX + name + b_key] = b.to(dtype).contiguous()
    for key, tensor in (extra or {}).items():
        tensors[key] = tensor.contiguous()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CONFIG).write_text(json.dumps(dict(config), indent=2, sort_keys=True) + "\n")
    save_file(tensors, str(out_dir / WEIGHTS), metadata={"format": "pt"})
    return [CONFIG, WEIGHTS]
