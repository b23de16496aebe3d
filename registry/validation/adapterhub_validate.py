"""Validate an AdapterHub adapter directory (:mod:`registry.validation.adapterhub`): files,
config, the strict safetensors headers, then the bottleneck checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from registry.errors import AdapterInvalid, ForbiddenFile
from registry.validation.adapterhub import (
    HUB_CONFIG,
    HUB_HEAD_CONFIG,
    HUB_HEAD_WEIGHTS,
    HUB_WEIGHTS,
    check_adapterhub,
    hub_method,
    is_adapterhub_config,
)
from registry.validation.config import MAX_CONFIG_BYTES, load_config_json
from registry.validation.files import HEAD_BYTES, WEIGHTS_NAME, check_file_allowed
from registry.validation.manifest import BaseManifest
from registry.validation.report import ValidationReport
from registry.validation.safetensors import parse_header
from registry.validation.source import ByteSource


def is_adapterhub_dir(files: Mapping[str, ByteSource], max_config_bytes: int) -> bool:
    """``adapter.safetensors`` (no peft weights) beside an ``adapters``-style config."""
    if HUB_WEIGHTS not in files or WEIGHTS_NAME in files or HUB_CONFIG not in files:
        return False
    src = files[HUB_CONFIG]
    if src.size > max_config_bytes:
        return False  # the peft path refuses it by size
    try:
        raw = load_config_json(src.read_at(0, src.size), max_bytes=max_config_bytes)
    except AdapterInvalid:  # an invalid config is the peft path's error to report
        return False
    return is_adapterhub_config(raw)


def _json(src: ByteSource, name: str) -> dict[str, Any]:
    if src.size > MAX_CONFIG_BYTES:  # refuse before reading the bytes
        raise ForbiddenFile(
            f"{name} larger than {MAX_CONFIG_BYTES} bytes",
            reason="too_large",
            context={"file": name, "size": src.size},
        )
    return load_config_json(src.read_at(0, src.size))


def validate_adapterhub(
    files: Mapping[str, ByteSource],
    *,
    base: BaseManifest | None,
    max_header_bytes: int,
    max_tensors: int,
) -> ValidationReport:
    """Validate an AdapterHub bottleneck adapter (see :mod:`registry.validation.adapterhub`).

    Raises:
        AdapterInvalid: a subclass with a stable ``code`` and ``context["reason"]``.
    """
    for name, src in files.items():
        check_file_allowed(name, src.read_at(0, HEAD_BYTES))
    if WEIGHTS_NAME in files:  # is_adapterhub_dir's caller guarantees it; a guard
        raise ForbiddenFile("peft weights in an AdapterHub adapter", reason="forbidden_name")
    raw = _json(files[HUB_CONFIG], HUB_CONFIG)
    if HUB_HEAD_CONFIG in files:
        _json(files[HUB_HEAD_CONFIG], HUB_HEAD_CONFIG)
    peft_type = hub_method(raw)
    header = parse_header(
        files[HUB_WEIGHTS],
        file_name=HUB_WEIGHTS,
        max_header_bytes=max_header_bytes,
        max_tensors=max_tensors,
    )
    if HUB_HEAD_WEIGHTS in files:
        parse_header(
            files[HUB_HEAD_WEIGHTS],
            file_name=HUB_HEAD_WEIGHTS,
            max_header_bytes=max_header_bytes,
            max_tensors=max_tensors,
        )
    targets, width = check_adapterhub(raw, header.tensors, base)
    dtypes = {t.dtype for t in header.tensors.values()}
    model_name = raw.get("model_name")
    return ValidationReport(
        peft_type=peft_type,
        task_type=None,
        base_model_name_or_path=model_name if isinstance(model_name, str) and model_name else None,
        revision=None,
        r=width or None,
        lora_alpha=None,
        target_modules=targets,
        rank_pattern={},
        use_dora=False,
        use_rslora=False,
        modules_to_save=None,
        dtype=(dtypes.pop() if len(dtypes) == 1 else "mixed") if dtypes else None,
        trainable_params=sum(t.numel for t in header.tensors.values()),
        tensor_count=len(header.tensors),
        files={name: src.size for name, src in sorted(files.items())},
        checked_against_base=base is not None,
    )
