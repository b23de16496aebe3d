"""Prompt-tuning relatives: multitask prompt tuning (MPT), context-aware prompt tuning (CPT) and
cartridges (CARTRIDGE: prefix-shaped, ``num_frozen_tokens`` of them kept frozen).

Both save ``prompt_embeddings`` like prompt tuning (checked by :mod:`checks_prompt`); MPT adds
``prefix_task_cols`` ``[num_tasks, num_virtual_tokens, num_ranks]`` and ``prefix_task_rows``
``[num_tasks, num_ranks, token_dim]`` (peft ``tuners/multitask_prompt_tuning/model.py``); CPT's
config lists ``cpt_token_ids``, ``cpt_mask`` and ``cpt_tokens_type_mask``, one entry per virtual
token (peft ``tuners/cpt/config.py``). The config's fields are read from ``raw`` (config.py types
only the prompt-tuning ones).

Errors: :class:`~registry.errors.InvalidAdapterConfig` ``schema``;
:class:`~registry.errors.InconsistentAdapter` ``missing_tensor``, ``config_mismatch``.
"""

from __future__ import annotations

from typing import Any, NoReturn

from registry.errors import InconsistentAdapter, InvalidAdapterConfig
from registry.validation.config import AdapterConfig
from registry.validation.safetensors import TensorInfo

MPT_TENSORS = ("prefix_task_cols", "prefix_task_rows")
CPT_LISTS = ("cpt_token_ids", "cpt_mask", "cpt_tokens_type_mask")


def _schema(field: str, detail: str) -> NoReturn:
    raise InvalidAdapterConfig(
        f"{field} {detail}",
        reason="schema",
        context={"file": "adapter_config.json", "field": field},
    )


def _int(cfg: AdapterConfig, key: str, default: int | None) -> int:
    value = cfg.raw.get(key, default)
    if value is None:
        value = default
    if type(value) is not int or value <= 0:
        _schema(key, "must be a positive integer")
    return value


def _mismatch(detail: str, tensor: str, **context: Any) -> NoReturn:
    raise InconsistentAdapter(
        detail, reason="config_mismatch", context={"tensor": tensor, **context}
    )


def check_prompt_relatives(
    cfg: AdapterConfig, tensors: dict[str, TensorInfo]
) -> dict[str, TensorInfo]:
    """Check MPT's task tensors / CPT's token lists; return the tensors left for
    :func:`~registry.validation.checks_prompt.check_prompt_tensors`."""
    if cfg.peft_type == "CPT":
        _check_cpt(cfg)
    if cfg.peft_type == "CARTRIDGE":
        _check_frozen_tokens(cfg)
    if cfg.peft_type in ("CPT", "MULTITASK_PROMPT_TUNING"):
        _check_rows(cfg, tensors)
    if cfg.peft_type != "MULTITASK_PROMPT_TUNING":
        return tensors
    tokens = _int(cfg, "num_virtual_tokens", None)
    tasks, ranks = _int(cfg, "num_tasks", 1), _int(cfg, "num_ranks", 1)
    width = tensors["prompt_embeddings"].shape[-1] if "prompt_embeddings" in tensors else None
    for name, expected in zip(
        MPT_TENSORS, ((tasks, tokens, ranks), (tasks, ranks, width)), strict=True
    ):
        info = tensors.get(name)
        if info is None:
            raise InconsistentAdapter(
                f"{name} missing", reason="missing_tensor", context={"tensor": name}
            )
        if info.shape != expected:
            detail = f"{name}: expected {list(expected)} (num_tasks, num_virtual_tokens/"
            detail += f"num_ranks, token_dim), got {list(info.shape)}"
            _mismatch(detail, name, expected=list(expected), actual=list(info.shape))
    return {k: v for k, v in tensors.items() if k not in MPT_TENSORS}


def _check_frozen_tokens(cfg: AdapterConfig) -> None:
    """CARTRIDGE: ``0 <= num_frozen_tokens <= num_virtual_tokens`` (peft's ``__post_init__``)."""
    frozen = cfg.raw.get("num_frozen_tokens")
    frozen = 1 if frozen is None else frozen
    if type(frozen) is not int or frozen < 0:
        _schema("num_frozen_tokens", "must be a non-negative integer")
    if cfg.num_virtual_tokens is not None and frozen > cfg.num_virtual_tokens:
        _schema("num_frozen_tokens", "must not exceed num_virtual_tokens")


def _check_cpt(cfg: AdapterConfig) -> None:
    lengths = []
    for key in CPT_LISTS:
        value = cfg.raw.get(key)
        if not isinstance(value, list) or not all(type(x) is int for x in value):
            _schema(key, "must be a list of integers")
        lengths.append(len(value))
    tokens = _int(cfg, "num_virtual_tokens", lengths[0])
    if set(lengths) != {tokens}:
        _mismatch(
            "cpt_token_ids, cpt_mask, cpt_tokens_type_mask need one entry per virtual token",
            "prompt_embeddings",
            field="num_virtual_tokens",
            expected=tokens,
            actual=lengths,
        )


def _check_rows(cfg: AdapterConfig, tensors: dict[str, TensorInfo]) -> None:
    """``prompt_embeddings`` rows: ``num_virtual_tokens * num_transformer_submodules``."""
    info = tensors.get("prompt_embeddings")
    if info is None or not info.shape:
        return  # check_prompt_tensors names the fault
    rows = _int(cfg, "num_virtual_tokens", None) * _int(cfg, "num_transformer_submodules", 1)
    if info.shape[0] != rows:
        detail = "rows != num_virtual_tokens (x num_transformer_submodules)"
        _mismatch(
            detail, info.name, field="num_virtual_tokens", expected=rows, actual=info.shape[0]
        )
