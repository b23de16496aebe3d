"""Validate an AdapterHub adapter directory (:mod:`registry.validation.adapterhub`): files,
config, the strict safetensors headers, then the checks of its method (bottleneck/Compacter,
prefix tuning, AdapterFusion) and of its prediction head."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from registry.errors import AdapterInvalid, ForbiddenFile, InconsistentAdapter
from registry.validation.adapterhub import (
    HUB_CONFIG,
    HUB_HEAD_CONFIG,
    HUB_HEAD_WEIGHTS,
    HUB_WEIGHTS,
    check_adapterhub,
    hub_method,
    is_adapterhub_config,
)
from registry.validation.adapterhub_fusion import (
    FUSION_CONFIG,
    FUSION_WEIGHTS,
    check_fusion,
    fusion_names,
    is_fusion_config,
)
from registry.validation.adapterhub_heads import check_head
from registry.validation.adapterhub_prefix import check_prefix_tuning
from registry.validation.config import MAX_CONFIG_BYTES, load_config_json
from registry.validation.files import HEAD_BYTES, WEIGHTS_NAME, check_file_allowed
from registry.validation.manifest import BaseManifest
from registry.validation.report import ValidationReport
from registry.validation.safetensors import parse_header
from registry.validation.source import ByteSource


def is_adapterhub_dir(files: Mapping[str, ByteSource], max_config_bytes: int) -> bool:
    """``adapter.safetensors`` (no peft weights) beside an ``adapters``-style config, or an
    AdapterFusion's two files."""
    if WEIGHTS_NAME in files:
        return False
    if FUSION_WEIGHTS in files and FUSION_CONFIG in files and HUB_CONFIG not in files:
        return _is(files[FUSION_CONFIG], max_config_bytes, is_fusion_config)
    if HUB_WEIGHTS not in files or HUB_CONFIG not in files:
        return False
    return _is(files[HUB_CONFIG], max_config_bytes, is_adapterhub_config)


def _is(src: ByteSource, max_config_bytes: int, kind: Callable[[Mapping[str, Any]], bool]) -> bool:
    if src.size > max_config_bytes:
        return False  # the peft path refuses it by size
    try:
        raw = load_config_json(src.read_at(0, src.size), max_bytes=max_config_bytes)
    except AdapterInvalid:  # an invalid config is the peft path's error to report
        return False
    return kind(raw)


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
    _check_one_kind(files)
    limits = {"max_header_bytes": max_header_bytes, "max_tensors": max_tensors}
    warnings: list[str] = []
    if HUB_CONFIG not in files:  # is_adapterhub_dir: an AdapterFusion
        raw = _json(files[FUSION_CONFIG], FUSION_CONFIG)
        header = parse_header(files[FUSION_WEIGHTS], file_name=FUSION_WEIGHTS, **limits)
        peft_type, targets, width = "ADAPTERHUB_FUSION", check_fusion(raw, header.tensors, base), 0
        warnings.append(
            f"AdapterFusion composes the adapters {', '.join(fusion_names(raw))}: the registry"
            " does not check that they are registered"
        )
    else:
        raw = _json(files[HUB_CONFIG], HUB_CONFIG)
        peft_type = hub_method(raw)
        header = parse_header(files[HUB_WEIGHTS], file_name=HUB_WEIGHTS, **limits)
        if peft_type == "ADAPTERHUB_PREFIX_TUNING":
            targets, width = check_prefix_tuning(raw, header.tensors, base)
        else:
            targets, width = check_adapterhub(raw, header.tensors, base)
        warnings.extend(_check_head(files, raw, limits))
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
        # The adapters library saves no buffers (bottleneck, PHM, prefix tuning, fusion and heads
        # hold nn.Parameters only): every saved tensor counts.
        trainable_params=sum(t.numel for t in header.tensors.values()),
        tensor_count=len(header.tensors),
        files={name: src.size for name, src in sorted(files.items())},
        checked_against_base=base is not None,
        warnings=warnings,
    )


def _check_one_kind(files: Mapping[str, ByteSource]) -> None:
    """An AdapterFusion is uploaded on its own: its files beside an adapter (or a head beside a
    fusion) would be stored unchecked."""
    fusion = sorted(files.keys() & {FUSION_CONFIG, FUSION_WEIGHTS})
    other = sorted(files.keys() & {HUB_WEIGHTS, HUB_HEAD_CONFIG, HUB_HEAD_WEIGHTS})
    if fusion and (other or HUB_CONFIG in files):
        name = fusion[0] if HUB_CONFIG in files else other[0]
        raise ForbiddenFile(
            f"{name}: an AdapterFusion is uploaded on its own, without an adapter or a head",
            reason="forbidden_name",
            context={"file": name},
        )


def _check_head(
    files: Mapping[str, ByteSource], raw: Mapping[str, Any], limits: Mapping[str, int]
) -> list[str]:
    """The prediction head's tensors against its config (:mod:`.adapterhub_heads`)."""
    if HUB_HEAD_CONFIG not in files and HUB_HEAD_WEIGHTS not in files:
        return []
    if HUB_HEAD_CONFIG not in files or HUB_HEAD_WEIGHTS not in files:
        missing = HUB_HEAD_CONFIG if HUB_HEAD_CONFIG not in files else HUB_HEAD_WEIGHTS
        raise InconsistentAdapter(
            f"a prediction head needs both {HUB_HEAD_CONFIG} and {HUB_HEAD_WEIGHTS}",
            reason="missing_tensor" if missing == HUB_HEAD_WEIGHTS else "missing_file",
            context={"file": missing},
        )
    head = _json(files[HUB_HEAD_CONFIG], HUB_HEAD_CONFIG)
    tensors = parse_header(
        files[HUB_HEAD_WEIGHTS],
        file_name=HUB_HEAD_WEIGHTS,
        max_header_bytes=limits["max_header_bytes"],
        max_tensors=limits["max_tensors"],
    ).tensors
    hidden = raw.get("hidden_size")
    if head.get("hidden_size") != hidden:
        raise InconsistentAdapter(
            f"head hidden size {head.get('hidden_size')!r}, adapter {hidden!r}",
            reason="shape_mismatch",
            context={"file": HUB_HEAD_CONFIG, "field": "hidden_size"},
        )
    assert isinstance(hidden, int)  # checked with the adapter
    return check_head(head, tensors, hidden)
