"""Validate a PEFT adapter (its files) and, optionally, its fit with a base weights manifest.

Order of checks (the first failure is raised; each names the file / tensor / module at fault):

1. Allow-list on every file, by name and by its first 512 bytes
   (:func:`~registry.validation.files.check_file_allowed`: ``forbidden_file``).
2. ``adapter_config.json`` present - else ``invalid_adapter_config`` reason ``missing_config``;
   ``adapter_model.safetensors`` present - else ``missing_weights`` reason ``missing_weights``.
3. Text extras checked in full (``forbidden_file``: ``binary``, ``malformed_json``, ``too_large``).
4. Config parse (``invalid_adapter_config``, ``unknown_peft_type``).
5. Strict safetensors parse (``corrupt_safetensors``); no tensors at all is ``missing_weights``
   reason ``no_tensors``.
6. Config <-> tensors (``inconsistent_adapter``: ``unexpected_tensor``, ``unpaired_lora``,
   ``rank_mismatch``, ``config_mismatch``, ``missing_tensor``, ``shape_mismatch``); methods
   described by a table (:mod:`registry.validation.methods`) are checked by its engine.
7. Base compatibility when ``base`` is given (``incompatible_base``: ``missing_modules``,
   ``shape_mismatch``, ``vocab_mismatch``).
   Sparse methods' indices are then read, streamed within ``max_index_bytes``
   (:mod:`registry.validation.methods.engine_indices`: ``index_out_of_range``, ...), when they
   are at most ``scan_limit_bytes`` (above it, within the budget: a warning, not read).
8. Health scan when the data is at most ``scan_limit_bytes`` (``unhealthy_tensors``:
   ``nan_or_inf``); an all-zero ``lora_B`` is only a warning (peft's untrained initialisation).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from registry.errors import ForbiddenFile, InvalidAdapterConfig, MissingWeights
from registry.validation.adapterhub_validate import is_adapterhub_dir, validate_adapterhub
from registry.validation.checks_base import check_against_base
from registry.validation.checks_lora import check_module
from registry.validation.checks_prompt import check_prompt_against_base, check_prompt_tensors
from registry.validation.checks_prompt_relatives import check_prompt_relatives
from registry.validation.config import MAX_CONFIG_BYTES, AdapterConfig, parse_config
from registry.validation.files import (
    CONFIG_NAME,
    HEAD_BYTES,
    HUB_JSON,
    HUB_SAFETENSORS,
    MAX_TEXT_BYTES,
    MAX_TOKENIZER_BYTES,
    WEIGHTS_NAME,
    check_file_allowed,
    check_text_extras,
)
from registry.validation.layout import classify
from registry.validation.manifest import BaseManifest
from registry.validation.methods import METHODS
from registry.validation.methods.bias_checks import check_bias_deltas
from registry.validation.methods.engine import check_method
from registry.validation.methods.engine_indices import DEFAULT_MAX_INDEX_BYTES, check_sparse_data
from registry.validation.methods.registry_tables import BITFIT
from registry.validation.patterns import RegexLimits
from registry.validation.report import ValidationReport
from registry.validation.safetensors import (
    MAX_HEADER_BYTES,
    MAX_TENSORS,
    SafetensorsHeader,
    parse_header,
)
from registry.validation.source import ByteSource
from registry.validation.tensor_health import scan_tensors_health

DEFAULT_SCAN_LIMIT_BYTES = 64 * 1024 * 1024


def _read_config(
    src: ByteSource, max_config_bytes: int, regex_limits: RegexLimits
) -> AdapterConfig:
    if src.size > max_config_bytes:  # refuse before reading the bytes
        raise InvalidAdapterConfig(
            f"adapter_config.json larger than {max_config_bytes} bytes",
            reason="too_large",
            context={"file": CONFIG_NAME, "size": src.size},
        )
    return parse_config(
        src.read_at(0, src.size), max_bytes=max_config_bytes, regex_limits=regex_limits
    )


def _number_or_none(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return value if ok else None


def _dtype(header: SafetensorsHeader) -> str | None:
    dtypes = {t.dtype for t in header.tensors.values()}
    if not dtypes:
        return None
    return dtypes.pop() if len(dtypes) == 1 else "mixed"


def _check_files(
    files: Mapping[str, ByteSource], *, max_text_bytes: int, max_tokenizer_bytes: int
) -> None:
    """Steps 1-3: every file allowed, config and weights present, text extras sound."""
    for name, src in files.items():
        check_file_allowed(name, src.read_at(0, HEAD_BYTES))
    for name in sorted(files.keys() & (HUB_SAFETENSORS | HUB_JSON)):
        raise ForbiddenFile(
            f"{name} belongs to an AdapterHub adapter, not a peft one",
            reason="forbidden_name",
            context={"file": name},
        )
    if CONFIG_NAME not in files:
        raise InvalidAdapterConfig(
            "adapter_config.json is missing", reason="missing_config", context={"file": CONFIG_NAME}
        )
    if WEIGHTS_NAME not in files:
        raise MissingWeights(
            "adapter_model.safetensors is missing",
            reason="missing_weights",
            context={"file": WEIGHTS_NAME},
        )
    check_text_extras(files, max_text_bytes=max_text_bytes, max_tokenizer_bytes=max_tokenizer_bytes)


def _read_header(
    weights: ByteSource, *, max_header_bytes: int, max_tensors: int
) -> SafetensorsHeader:
    """Step 5: the strict safetensors header, refusing one without tensors."""
    header = parse_header(
        weights,
        file_name=WEIGHTS_NAME,
        max_header_bytes=max_header_bytes,
        max_tensors=max_tensors,
    )
    if not header.tensors:
        raise MissingWeights(
            "adapter_model.safetensors holds no tensors",
            reason="no_tensors",
            context={"file": WEIGHTS_NAME},
        )
    return header


@dataclass
class _TensorFindings:
    """What steps 6-7 learnt: warnings, ranks, target modules, the lora_B tensors whose
    all-zero state is only worth a warning, and the saved buffers (a table's ``Role.buffer``),
    which are not trainable parameters."""

    warnings: list[str] = field(default_factory=list)
    ranks: list[int] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    zero_check: list[str] = field(default_factory=list)
    checked: bool = False
    buffers: list[str] = field(default_factory=list)


def _check_tensors(
    cfg: AdapterConfig, header: SafetensorsHeader, base: BaseManifest | None
) -> _TensorFindings:
    """Steps 6-7: config against tensors, then against the base when one is given."""
    found = _TensorFindings()
    method = METHODS.get(cfg.peft_type)
    if method is not None:
        result = check_method(cfg, method, header.tensors, base)
        if method is BITFIT:
            check_bias_deltas(header.tensors, base)
        found.targets, found.checked, found.buffers = result.targets, result.checked, result.buffers
        found.warnings.extend(result.warnings)
        if result.rank is not None:
            found.ranks.append(result.rank)
    elif cfg.is_prompt_learning:
        info, extras = check_prompt_tensors(cfg, check_prompt_relatives(cfg, header.tensors))
        if base is not None:
            found.warnings.extend(check_prompt_against_base(cfg, extras, info, base))
            found.checked = True
    else:
        layout = classify(header.tensors, cfg)
        for module, group in sorted(layout.modules.items()):
            rank = check_module(cfg, group)
            if rank is not None:
                found.ranks.append(rank)
            found.targets.append(module)
            if "B" in group.parts:
                found.zero_check.append(group.parts["B"].name)
        if base is not None:
            found.warnings.extend(check_against_base(cfg, layout, base))
            found.checked = True
    return found


def validate_adapter(
    files: Mapping[str, ByteSource],
    *,
    base: BaseManifest | None,
    scan_limit_bytes: int = DEFAULT_SCAN_LIMIT_BYTES,
    max_config_bytes: int = MAX_CONFIG_BYTES,
    max_header_bytes: int = MAX_HEADER_BYTES,
    max_text_bytes: int = MAX_TEXT_BYTES,
    max_tokenizer_bytes: int = MAX_TOKENIZER_BYTES,
    max_tensors: int = MAX_TENSORS,
    regex_limits: RegexLimits | None = None,
    max_index_bytes: int = DEFAULT_MAX_INDEX_BYTES,
) -> ValidationReport:
    """Validate an adapter's files (name -> source); see the module docstring for the order.

    Reads file heads, the config, text extras, the safetensors header, and tensor data only when
    the whole data buffer is at most ``scan_limit_bytes``. Every file read whole is refused from
    its size before it is read (config, text extras by :func:`text_limit`, header length); the
    config's regexes are matched within ``regex_limits``.

    Raises:
        AdapterInvalid: a subclass with a stable ``code`` and ``context["reason"]``.
    """
    if is_adapterhub_dir(files, max_config_bytes):
        check_text_extras(
            files, max_text_bytes=max_text_bytes, max_tokenizer_bytes=max_tokenizer_bytes
        )
        return validate_adapterhub(
            files, base=base, max_header_bytes=max_header_bytes, max_tensors=max_tensors
        )
    _check_files(files, max_text_bytes=max_text_bytes, max_tokenizer_bytes=max_tokenizer_bytes)
    cfg = _read_config(files[CONFIG_NAME], max_config_bytes, regex_limits or RegexLimits())
    weights = files[WEIGHTS_NAME]
    header = _read_header(weights, max_header_bytes=max_header_bytes, max_tensors=max_tensors)
    found = _check_tensors(cfg, header, base)
    found.warnings.extend(
        check_sparse_data(
            cfg,
            header,
            weights,
            base,
            max_index_bytes=max_index_bytes,
            read_limit_bytes=scan_limit_bytes,
        )
    )
    found.warnings.extend(
        scan_tensors_health(
            weights,
            header,
            limit_bytes=scan_limit_bytes,
            zero_check=found.zero_check,
            file_name=WEIGHTS_NAME,
        )
    )
    return _report(cfg, header, files, found)


def _report(
    cfg: AdapterConfig,
    header: SafetensorsHeader,
    files: Mapping[str, ByteSource],
    found: _TensorFindings,
) -> ValidationReport:
    ranks = found.ranks
    buffers = set(found.buffers)
    r: int | None
    alpha: float | None
    if cfg.peft_type in METHODS:
        r = max(ranks) if ranks else None
        alpha = _number_or_none(cfg.raw.get("lora_alpha", cfg.raw.get("alpha")))
    elif cfg.peft_type in ("LORA", "ADALORA"):
        r, alpha = max(ranks, default=cfg.r), cfg.lora_alpha
    elif cfg.peft_type in ("LOHA", "LOKR"):
        r, alpha = max(ranks, default=cfg.r), cfg.alpha
    else:
        r, alpha = None, None
    return ValidationReport(
        peft_type=cfg.peft_type,
        task_type=cfg.task_type,
        base_model_name_or_path=cfg.base_model_name_or_path,
        revision=cfg.revision,
        r=r,
        lora_alpha=alpha,
        target_modules=sorted(found.targets),
        rank_pattern=dict(cfg.rank_pattern),
        use_dora=cfg.use_dora,
        use_rslora=cfg.use_rslora,
        modules_to_save=list(cfg.modules_to_save) if cfg.modules_to_save is not None else None,
        dtype=_dtype(header),
        trainable_params=sum(t.numel for t in header.tensors.values() if t.name not in buffers),
        tensor_count=len(header.tensors),
        files={name: src.size for name, src in sorted(files.items())},
        warnings=found.warnings,
        checked_against_base=found.checked,
    )
