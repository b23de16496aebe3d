"""Prompt-learning adapters (prompt tuning, p-tuning, prefix tuning, cartridges): one
``prompt_embeddings``.

Shapes (peft ``get_prompt_embedding_to_save``):

* prompt tuning / p-tuning: ``[num_virtual_tokens * num_transformer_submodules, token_dim]``,
  ``token_dim`` = the base hidden size;
* prefix tuning and CARTRIDGE (a trained KV cache, peft ``tuners/cartridge/model.py``: its frozen
  and trainable tokens saved as one tensor): ``[num_virtual_tokens, num_layers * 2 * token_dim]``,
  ``token_dim`` = the KV width (``hidden // heads * kv_heads``: smaller than the hidden size under
  grouped-query attention).

Beside it, the task head of a classification task (``modules_to_save``: ``classifier``,
``score``) saved in full as ``base_model.<module>.<param>`` (peft's prompt-learning model wraps no
tuner: its ``base_model`` is the transformers model itself); with a base, each copy has its base
tensor's shape (a head the base checkpoint lacks is a warning, as for LoRA).

Errors: :class:`~registry.errors.InconsistentAdapter` reasons ``unexpected_tensor``,
``missing_tensor`` (no ``prompt_embeddings``), ``config_mismatch`` (shape disagrees with the
config); :class:`~registry.errors.IncompatibleBase` reason ``shape_mismatch`` (``token_dim`` /
``num_layers`` / columns disagree with the base config; context names the ``field``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from registry.errors import IncompatibleBase, InconsistentAdapter
from registry.validation.checks_base import base_weights, check_extras
from registry.validation.config import PREFIX_LAYOUT_TYPES, AdapterConfig
from registry.validation.layout import AdapterLayout, Extra, in_modules_to_save
from registry.validation.manifest import BaseManifest
from registry.validation.safetensors import TensorInfo

PROMPT_TENSOR = "prompt_embeddings"


def _inconsistent(reason: str, detail: str, tensor: str, **context: Any) -> NoReturn:
    raise InconsistentAdapter(detail, reason=reason, context={"tensor": tensor, **context})


def _incompatible(field: str, expected: Any, actual: Any) -> NoReturn:
    raise IncompatibleBase(
        f"{field}: base needs {expected}, adapter has {actual}",
        reason="shape_mismatch",
        context={"tensor": PROMPT_TENSOR, "field": field, "expected": expected, "actual": actual},
    )


#: Where a prompt-learning adapter saves a ``modules_to_save`` copy: ``base_model.<path>``.
SAVED_PREFIX = "base_model."


def prompt_extras(cfg: AdapterConfig, tensors: Mapping[str, TensorInfo]) -> list[Extra]:
    """The ``modules_to_save`` copies saved beside ``prompt_embeddings``.

    Raises:
        InconsistentAdapter: ``unexpected_tensor`` (any other tensor).
    """
    extras = []
    for name, info in tensors.items():
        if name == PROMPT_TENSOR:
            continue
        path = name.removeprefix(SAVED_PREFIX)
        module = in_modules_to_save(path, cfg) if path != name else None
        if module is None:
            detail = f"{cfg.peft_type} saves only {PROMPT_TENSOR} and its modules_to_save"
            _inconsistent("unexpected_tensor", detail, name)
        extras.append(Extra("modules_to_save", module, path, info))
    return extras


def check_prompt_tensors(
    cfg: AdapterConfig, tensors: dict[str, TensorInfo]
) -> tuple[TensorInfo, list[Extra]]:
    """Check the tensor set and ``prompt_embeddings``' shape against the config; return it and
    the ``modules_to_save`` copies beside it.

    Raises:
        InconsistentAdapter: ``unexpected_tensor``, ``missing_tensor``, ``config_mismatch``.
    """
    extras = prompt_extras(cfg, tensors)
    info = tensors.get(PROMPT_TENSOR)
    if info is None:
        _inconsistent("missing_tensor", f"{PROMPT_TENSOR} missing", PROMPT_TENSOR)
    if len(info.shape) != 2:
        _inconsistent("config_mismatch", f"{PROMPT_TENSOR} must be 2-D", PROMPT_TENSOR)
    rows, cols = info.shape
    if cfg.num_virtual_tokens is not None:
        prefix = cfg.peft_type in PREFIX_LAYOUT_TYPES
        submodules = 1 if prefix else cfg.num_transformer_submodules or 1
        expected_rows = cfg.num_virtual_tokens * submodules
        if rows != expected_rows:
            _inconsistent(
                "config_mismatch",
                "rows != num_virtual_tokens (x num_transformer_submodules)",
                PROMPT_TENSOR,
                field="num_virtual_tokens",
                expected=expected_rows,
                actual=rows,
            )
    expected_cols = _expected_cols(cfg.peft_type, cfg.token_dim, cfg.num_layers)
    if expected_cols is not None and cols != expected_cols:
        _inconsistent(
            "config_mismatch",
            "columns disagree with token_dim / num_layers",
            PROMPT_TENSOR,
            field="token_dim",
            expected=expected_cols,
            actual=cols,
        )
    return info, extras


def _expected_cols(peft_type: str, token_dim: int | None, num_layers: int | None) -> int | None:
    if token_dim is None:
        return None
    if peft_type in PREFIX_LAYOUT_TYPES:
        return num_layers * 2 * token_dim if num_layers is not None else None
    return token_dim


def check_prompt_against_base(
    cfg: AdapterConfig, extras: list[Extra], info: TensorInfo, manifest: BaseManifest
) -> list[str]:
    """Check the saved head copies against the base weights, and ``token_dim``, ``num_layers``
    and the embedding width against the base config.

    Returns warnings for values the base config does not state (and heads it lacks).

    Raises:
        IncompatibleBase: ``shape_mismatch``, ``missing_modules``.
    """
    warnings: list[str] = []
    layout = AdapterLayout(extras=extras)
    base_weights(cfg, layout, manifest, warnings)
    check_extras(cfg, layout, manifest)
    return warnings + _check_prompt_shape(cfg, info, manifest)


def _check_prompt_shape(cfg: AdapterConfig, info: TensorInfo, manifest: BaseManifest) -> list[str]:
    prefix = cfg.peft_type in PREFIX_LAYOUT_TYPES
    token_dim = manifest.kv_width if prefix else manifest.hidden_size
    if token_dim is None:
        return ["base config states no hidden size; prompt shapes not checked against the base"]
    if cfg.token_dim is not None and cfg.token_dim != token_dim:
        _incompatible("token_dim", token_dim, cfg.token_dim)
    if not prefix:
        if info.shape[1] != token_dim:
            _incompatible("token_dim", token_dim, info.shape[1])
        return []
    layers = manifest.num_layers
    if layers is None:
        return ["base config states no layer count; prefix width not checked against the base"]
    if cfg.num_layers is not None and cfg.num_layers != layers:
        _incompatible("num_layers", layers, cfg.num_layers)
    if info.shape[1] != layers * 2 * token_dim:
        _incompatible("num_layers * 2 * token_dim", layers * 2 * token_dim, info.shape[1])
    return []
