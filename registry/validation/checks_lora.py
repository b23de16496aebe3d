"""Config <-> tensor consistency of LoRA-like adapters (no base needed).

Per targeted module: every factor has its partners (LoRA A/B, AdaLoRA A/B/E, LoHa's four
factors, LoKr's two Kronecker factors), ranks agree with each other and with ``r`` /
``rank_pattern`` (AdaLoRA: ``init_r`` and the kept-value masks), DoRA magnitudes exist exactly
when ``use_dora``, ``lora_B.bias`` only with ``lora_bias``.

Errors: :class:`~registry.errors.InconsistentAdapter` reasons ``unpaired_lora`` (a partner is
missing), ``rank_mismatch`` (ranks disagree, or a factor has too few dimensions to hold a rank),
``unexpected_tensor`` (a tensor the config says should not exist), ``config_mismatch`` (IA3
vector orientation contradicts ``feedforward_modules``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from registry.errors import InconsistentAdapter
from registry.validation.config import AdapterConfig
from registry.validation.layout import PEFT_PREFIX, ModuleTensors
from registry.validation.matching import pattern_lookup, spec_matches
from registry.validation.safetensors import TensorInfo


def _fail(reason: str, detail: str, module: str, tensor: str | None, **extra: Any) -> NoReturn:
    context: dict[str, Any] = {"module": module, **extra}
    if tensor is not None:
        context["tensor"] = tensor
    raise InconsistentAdapter(detail, reason=reason, context=context)


def _tensor_name(module: str, suffix: str) -> str:
    return f"{PEFT_PREFIX}{module}.{suffix}"


def _dim(group: ModuleTensors, role: str, axis: int) -> int:
    info = group.parts[role]
    if len(info.shape) < 2:
        _fail("rank_mismatch", f"{role} must have at least 2 dimensions", group.module, info.name)
    return info.shape[axis]


def _expect_rank(group: ModuleTensors, role: str, actual: int, expected: int, why: str) -> None:
    if actual != expected:
        _fail(
            "rank_mismatch",
            f"rank {actual} of {role} != {expected} ({why})",
            group.module,
            group.parts[role].name,
            expected=expected,
            actual=actual,
        )


def configured_rank(cfg: AdapterConfig, module: str) -> int:
    """The rank peft gives ``module``: its ``rank_pattern`` entry, else ``r``."""
    value = pattern_lookup(cfg, cfg.rank_pattern, module)
    return value if isinstance(value, int) else cfg.r


def check_module(cfg: AdapterConfig, group: ModuleTensors) -> int | None:
    """Check one module's tensors against each other and the config; return its rank.

    Raises:
        InconsistentAdapter: see the module docstring.
    """
    checker = {
        "LORA": _check_lora,
        "ADALORA": _check_adalora,
        "IA3": _check_ia3,
        "LOHA": _check_loha,
        "LOKR": _check_lokr,
    }[cfg.peft_type]
    return checker(cfg, group)


def _require(group: ModuleTensors, roles: Mapping[str, str]) -> None:
    """``roles``: role -> saved suffix; each missing one is an unpaired factor."""
    for role, suffix in roles.items():
        if role not in group.parts:
            _fail(
                "unpaired_lora",
                f"{suffix} missing for module",
                group.module,
                _tensor_name(group.module, suffix),
            )


def _check_lora(cfg: AdapterConfig, group: ModuleTensors) -> int:
    parts = group.parts
    embedding = "emb_A" in parts or "emb_B" in parts
    if embedding and ("A" in parts or "B" in parts):
        other = parts.get("A") or parts["B"]
        _fail(
            "unexpected_tensor",
            "module has both linear and embedding LoRA",
            group.module,
            other.name,
        )
    a, b = ("emb_A", "emb_B") if embedding else ("A", "B")
    suffix_a, suffix_b = (
        ("lora_embedding_A", "lora_embedding_B")
        if embedding
        else ("lora_A.weight", "lora_B.weight")
    )
    _require(group, {a: suffix_a, b: suffix_b})
    rank = _dim(group, a, 0)
    expected = configured_rank(cfg, group.module)
    _expect_rank(group, a, rank, expected, "r / rank_pattern")
    _expect_rank(group, b, _dim(group, b, 1), expected, "r / rank_pattern")
    if cfg.use_dora:
        _require(group, {"magnitude": "lora_magnitude_vector"})
    elif "magnitude" in parts:
        _fail(
            "unexpected_tensor",
            "DoRA magnitude without use_dora",
            group.module,
            parts["magnitude"].name,
        )
    if "B_bias" in parts and not cfg.lora_bias:
        _fail(
            "unexpected_tensor", "lora_B.bias without lora_bias", group.module, parts["B_bias"].name
        )
    return rank


def _adalora_expected_rank(cfg: AdapterConfig, module: str) -> int | None:
    """The kept rank from an AdaLoRA ``rank_pattern`` mask, ``init_r`` when there is no
    pattern, or None when a pattern exists but names this module in a form not recognised."""
    if not cfg.rank_pattern:
        return cfg.init_r
    for key, value in cfg.rank_pattern.items():
        norm = key.removeprefix(PEFT_PREFIX)
        for suffix in (".lora_E", ".lora_A", ".lora_B"):
            norm = norm.removesuffix(suffix)
        if norm == module or norm.removesuffix(".default") == module:
            return sum(value) if isinstance(value, list) else int(value)
    return None


def _check_adalora(cfg: AdapterConfig, group: ModuleTensors) -> int:
    _require(group, {"A": "lora_A", "B": "lora_B", "E": "lora_E"})
    rank = _dim(group, "A", 0)
    _expect_rank(group, "B", _dim(group, "B", 1), rank, "lora_A rows")
    e_shape = group.parts["E"].shape
    if e_shape != (rank, 1):
        _fail(
            "rank_mismatch",
            f"lora_E shape {list(e_shape)} != [{rank}, 1]",
            group.module,
            group.parts["E"].name,
            expected=[rank, 1],
            actual=list(e_shape),
        )
    if rank > cfg.init_r:
        _fail(
            "rank_mismatch",
            f"rank {rank} exceeds init_r {cfg.init_r}",
            group.module,
            group.parts["A"].name,
            expected=cfg.init_r,
            actual=rank,
        )
    expected = _adalora_expected_rank(cfg, group.module)
    if expected is not None:
        _expect_rank(group, "A", rank, expected, "init_r / rank_pattern")
    return rank


def _check_ia3(cfg: AdapterConfig, group: ModuleTensors) -> None:
    info = group.parts["ia3_l"]
    if len(info.shape) != 2 or 1 not in info.shape:
        _fail("config_mismatch", "ia3_l must be [out, 1] or [1, in]", group.module, info.name)
    feedforward = spec_matches(cfg, group.module, cfg.feedforward_modules)
    # Both [1, 1] readings are fine; otherwise the orientation must follow feedforward_modules.
    if info.shape != (1, 1) and (info.shape[0] == 1) != feedforward:
        _fail(
            "config_mismatch",
            "ia3_l orientation contradicts feedforward_modules",
            group.module,
            info.name,
            feedforward=feedforward,
            actual=list(info.shape),
        )
    return None


def _check_loha(cfg: AdapterConfig, group: ModuleTensors) -> int:
    _require(
        group,
        {name: name for name in ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b")},
    )
    effective_conv = "hada_t1" in group.parts or "hada_t2" in group.parts
    if effective_conv:
        _require(group, {"hada_t1": "hada_t1", "hada_t2": "hada_t2"})
    expected = configured_rank(cfg, group.module)
    # Linear: w*_a [out, r], w*_b [r, in]; effective conv: w*_a [r, out], w*_b [r, in].
    a_axis = 0 if effective_conv else 1
    for role, axis in (
        ("hada_w1_a", a_axis),
        ("hada_w1_b", 0),
        ("hada_w2_a", a_axis),
        ("hada_w2_b", 0),
    ):
        _expect_rank(group, role, _dim(group, role, axis), expected, "r / rank_pattern")
    return expected


def lokr_factor(group: ModuleTensors, which: str) -> tuple[int, int] | None:
    """Return the (rows, cols) of Kronecker factor ``which`` ("w1"/"w2"), None if not 2-D."""
    parts = group.parts
    full = parts.get(f"lokr_{which}")
    if full is not None:
        return (full.shape[0], full.shape[1]) if len(full.shape) == 2 else None
    a, b = parts[f"lokr_{which}_a"], parts[f"lokr_{which}_b"]
    if len(a.shape) != 2 or len(b.shape) != 2:
        return None
    if which == "w2" and "lokr_t2" in parts:
        return a.shape[1], b.shape[1]  # effective conv: w2_a [r, out], w2_b [r, in]
    return a.shape[0], b.shape[1]


def _check_lokr(cfg: AdapterConfig, group: ModuleTensors) -> int:
    expected = configured_rank(cfg, group.module)
    ranks: list[int] = []
    for which in ("w1", "w2"):
        full, a, b = f"lokr_{which}", f"lokr_{which}_a", f"lokr_{which}_b"
        if full in group.parts:
            for extra in (a, b):
                if extra in group.parts:
                    _fail(
                        "unexpected_tensor",
                        f"{full} saved both whole and factorised",
                        group.module,
                        group.parts[extra].name,
                    )
            continue
        if a not in group.parts and b not in group.parts:
            _require(group, {full: full})
        _require(group, {a: a, b: b})
        # w*_a [out, r] @ w*_b [r, in]; with lokr_t2 (effective conv) w2_a is [r, out].
        rank = _dim(group, a, 0 if which == "w2" and "lokr_t2" in group.parts else 1)
        _expect_rank(group, b, _dim(group, b, 0), rank, f"{a} rank")
        _expect_rank(group, a, rank, expected, "r / rank_pattern")
        ranks.append(rank)
    return max(ranks, default=expected)


def tensor_rank(info: TensorInfo) -> int | None:
    """Leading dimension of a 2-D+ tensor (used for report summaries)."""
    return info.shape[0] if len(info.shape) >= 2 else None
