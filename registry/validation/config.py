"""Parse ``adapter_config.json`` into a typed :class:`AdapterConfig`.

Unknown keys are ignored (peft adds fields every release and drops unknown ones itself), but the
fields this package uses are type-checked for the adapter's method. ``null`` means "peft's
default" for every field, as in peft.

Errors:

* :class:`~registry.errors.InvalidAdapterConfig` reasons ``too_large`` (over the size cap),
  ``malformed_json`` (not UTF-8 JSON, or not an object), ``duplicate_key``, ``missing_peft_type``,
  ``schema`` (a used field has the wrong type; ``context["field"]`` names it).
* ``pattern_too_complex`` - a regex (``target_modules``/``exclude_modules``/
  ``feedforward_modules`` string, ``rank_pattern``/``alpha_pattern`` key, ``layers_pattern``) that
  cannot be matched within the bounds of :mod:`registry.validation.patterns` (too long, too
  many, too big a program; raised later, while matching, when a budget runs out).
* :class:`~registry.errors.UnknownPeftType` with ``reason`` = the ``peft_type`` value itself
  (as peft fails with ``KeyError: '<value>'``), or ``not_validated`` for a real peft method the
  registry cannot check.

Method support: :data:`KNOWN_PEFT_TYPES` are validated fully (the LoRA family and prompt learning
by hand-written checks, the rest by the tables of :mod:`registry.validation.methods`); the other
real peft methods (:data:`PEFT_TYPES`) are refused as ``unknown_peft_type`` reason
``not_validated``; any other value as ``unknown_peft_type`` with the value as reason.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from registry.errors import InvalidAdapterConfig, UnknownPeftType
from registry.validation.methods import METHODS
from registry.validation.patterns import (
    Names,
    PatternSet,
    RegexLimits,
    compile_config_patterns,
    layers_regex,
)
from registry.validation.refused_methods import REFUSED_WHY, refuse_target_parameters
from registry.validation.strict_json import DuplicateKey, no_duplicates, reject_constant

MAX_CONFIG_BYTES = 256 * 1024

PROMPT_PEFT_TYPES: frozenset[str] = frozenset(
    {"PREFIX_TUNING", "PROMPT_TUNING", "P_TUNING", "MULTITASK_PROMPT_TUNING", "CPT", "CARTRIDGE"}
)
#: Prompt-learning types saving a flattened KV prefix ``[tokens, num_layers * 2 * token_dim]``.
PREFIX_LAYOUT_TYPES: frozenset[str] = frozenset({"PREFIX_TUNING", "CARTRIDGE"})
LORA_LIKE_PEFT_TYPES: frozenset[str] = frozenset({"LORA", "ADALORA", "IA3", "LOHA", "LOKR"})
#: Methods described by a table (:mod:`registry.validation.methods`).
TABLE_PEFT_TYPES: frozenset[str] = frozenset(METHODS)
KNOWN_PEFT_TYPES: frozenset[str] = LORA_LIKE_PEFT_TYPES | PROMPT_PEFT_TYPES | TABLE_PEFT_TYPES
#: Every ``PeftType`` of peft 0.21.2 (and ``BONE``, MISS's earlier name). Those not in
#: :data:`KNOWN_PEFT_TYPES` are real methods the registry cannot check structurally: refused
#: (``unknown_peft_type``, reason ``not_validated``, ``context["why"]`` from
#: :data:`~registry.validation.refused_methods.REFUSED_WHY`), never accepted unchecked.
PEFT_TYPES: frozenset[str] = frozenset(
    """
    PROMPT_TUNING MULTITASK_PROMPT_TUNING P_TUNING PREFIX_TUNING LORA ADALORA ADAMSS BOFT
    ADAPTION_PROMPT IA3 BEFT LILY LOHA LOKR OFT POLY LN_TUNING VERA FROD PVERA FOURIERFT GLORA
    XLORA HRA VBLORA UNILORA CPT MISS BONE RANDLORA ROAD TRAINABLE_TOKENS HIRA SHIRA C3A
    WAVEFT OSF DELORA GRALORA CARTRIDGE TINYLORA PSOFT PEANUT SHADOW SUPERTUNING DEFT
    """.split()  # noqa: SIM905 (one name per line would add 40 lines)
)

TargetSpec = tuple[str, ...] | str | None


@dataclass(frozen=True)
class AdapterConfig:
    """The typed subset of ``adapter_config.json`` the validator uses (``raw`` keeps it all)."""

    peft_type: str
    task_type: str | None = None
    base_model_name_or_path: str | None = None
    revision: str | None = None
    r: int = 8
    lora_alpha: float = 8
    target_modules: TargetSpec = None
    exclude_modules: TargetSpec = None
    rank_pattern: dict[str, Any] = field(default_factory=dict)
    alpha_pattern: dict[str, float] = field(default_factory=dict)
    use_dora: bool = False
    use_rslora: bool = False
    fan_in_fan_out: bool = False
    bias: str = "none"
    lora_bias: bool = False
    modules_to_save: tuple[str, ...] | None = None
    layers_to_transform: tuple[int, ...] | None = None
    layers_pattern: tuple[str, ...] | None = None
    init_r: int = 12
    target_r: int = 8
    feedforward_modules: TargetSpec = None
    alpha: float = 8
    decompose_both: bool = False
    decompose_factor: int = -1
    use_effective_conv2d: bool = False
    num_virtual_tokens: int | None = None
    token_dim: int | None = None
    num_transformer_submodules: int | None = None
    num_attention_heads: int | None = None
    num_layers: int | None = None
    prefix_projection: bool = False
    encoder_hidden_size: int | None = None
    #: LoRA's ``trainable_token_indices``: embedding rows trained in full beside the adapter.
    trainable_token_indices: tuple[int, ...] | dict[str, tuple[int, ...]] | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    #: The config's regexes, compiled, with the matching budget of this validation.
    patterns: PatternSet = field(default_factory=PatternSet, compare=False, repr=False)

    @property
    def is_prompt_learning(self) -> bool:
        return self.peft_type in PROMPT_PEFT_TYPES


# --- field validators: each returns the typed value or raises _SchemaError -----------------


class _SchemaError(Exception):
    pass


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise _SchemaError("must be a string")
    return v


def _pos_int(v: Any) -> int:
    if not _is_int(v) or v <= 0:
        raise _SchemaError("must be a positive integer")
    return int(v)


def _int(v: Any) -> int:
    if not _is_int(v):
        raise _SchemaError("must be an integer")
    return int(v)


def _number(v: Any) -> float:
    if not (_is_int(v) or isinstance(v, float)) or not math.isfinite(v):
        raise _SchemaError("must be a finite number")
    number: float = v  # keep ints as ints (lora_alpha 8 stays 8 in reports)
    return number


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise _SchemaError("must be a boolean")
    return v


def _regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise _SchemaError(f"invalid regular expression: {exc}") from exc
    return pattern


def _str_list(v: Any) -> Names:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise _SchemaError("must be a list of strings")
    return Names(v)


def _target(v: Any) -> tuple[str, ...] | str:
    # A string is a regex fullmatched against the module path; a list is exact-or-suffix names.
    if isinstance(v, str):
        return _regex(v)
    return _str_list(v)


def _layers_pattern(v: Any) -> tuple[str, ...]:
    patterns = (v,) if isinstance(v, str) else _str_list(v)
    for pattern in patterns:
        # peft splices the entry into its own regex and reads group 1 as the layer index.
        if re.compile(_regex(layers_regex(pattern))).groups != 1:
            raise _SchemaError("must not contain capturing groups (peft reads group 1)")
    return patterns


def _layers(v: Any) -> tuple[int, ...]:
    if _is_int(v):
        return (int(v),)
    if not isinstance(v, list) or not all(_is_int(x) and x >= 0 for x in v):
        raise _SchemaError("must be an integer or a list of non-negative integers")
    return tuple(v)


def _rows(v: Any) -> tuple[int, ...]:
    if not isinstance(v, list) or not all(_is_int(x) and x >= 0 for x in v):
        raise _SchemaError("must list non-negative integers (one object of lists per module)")
    return tuple(int(x) for x in v)


def _token_indices(v: Any) -> tuple[int, ...] | dict[str, tuple[int, ...]]:
    # LoRA's trainable_token_indices: rows of the input embedding, or an object of them per module.
    if isinstance(v, dict):
        return {str(module): _rows(rows) for module, rows in v.items()}
    return _rows(v)


def _pattern_keys(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise _SchemaError("must be an object")
    for key in v:
        _regex(key)
    return v


def _rank_pattern(v: Any) -> dict[str, int]:
    pattern = _pattern_keys(v)
    for value in pattern.values():
        _pos_int(value)
    return pattern


def _adalora_rank_pattern(v: Any) -> dict[str, Any]:
    # After update_and_allocate: {"<module>.lora_E": [bool x init_r]} - the kept singular values.
    pattern = _pattern_keys(v)
    for value in pattern.values():
        ok_mask = isinstance(value, list) and all(isinstance(x, bool) for x in value)
        if not ok_mask and not (_is_int(value) and value > 0):
            raise _SchemaError("values must be lists of booleans (or positive ranks)")
    return pattern


def _alpha_pattern(v: Any) -> dict[str, float]:
    pattern = _pattern_keys(v)
    for value in pattern.values():
        _number(value)
    return pattern


Validator = Callable[[Any], Any]
_COMMON: dict[str, Validator] = {
    "task_type": _str,
    "base_model_name_or_path": _str,
    "revision": _str,
}
_TARGETING: dict[str, Validator] = {
    "target_modules": _target,
    "exclude_modules": _target,
    "modules_to_save": _str_list,
    "layers_to_transform": _layers,
    "layers_pattern": _layers_pattern,
}


def _low_rank(alpha: str, **flags: Validator) -> dict[str, Validator]:
    """The fields of a low-rank method (LoRA, LyCORIS) in checking order: targeting, the rank,
    its scale (the field ``alpha``: ``lora_alpha`` in LoRA), their per-module patterns, then the
    method's own ``flags``."""
    return {
        **_TARGETING,
        "r": _pos_int,
        alpha: _number,
        "rank_pattern": _rank_pattern,
        "alpha_pattern": _alpha_pattern,
        **flags,
    }


_LORA = _low_rank(
    "lora_alpha",
    use_dora=_bool,
    use_rslora=_bool,
    fan_in_fan_out=_bool,
    bias=_str,
    lora_bias=_bool,
    trainable_token_indices=_token_indices,
)
_LYCORIS = _low_rank("alpha", use_effective_conv2d=_bool)
_PROMPT: dict[str, Validator] = {
    # Classification tasks: peft adds the task head (``classifier``/``score``), saved in full.
    "modules_to_save": _str_list,
    "num_virtual_tokens": _pos_int,
    "token_dim": _pos_int,
    "num_transformer_submodules": _pos_int,
    "num_attention_heads": _pos_int,
    "num_layers": _pos_int,
}
FIELDS_BY_TYPE: dict[str, dict[str, Validator]] = {
    "LORA": _LORA,
    "ADALORA": {
        **_LORA,
        "rank_pattern": _adalora_rank_pattern,
        "init_r": _pos_int,
        "target_r": _pos_int,
    },
    "IA3": {
        "target_modules": _target,
        "exclude_modules": _target,
        "feedforward_modules": _target,
        "fan_in_fan_out": _bool,
        "modules_to_save": _str_list,
    },
    "LOHA": _LYCORIS,
    "LOKR": {**_LYCORIS, "decompose_both": _bool, "decompose_factor": _int},
    "PROMPT_TUNING": _PROMPT,
    "P_TUNING": {**_PROMPT, "encoder_hidden_size": _pos_int},
    "PREFIX_TUNING": {**_PROMPT, "encoder_hidden_size": _pos_int, "prefix_projection": _bool},
    "CARTRIDGE": _PROMPT,  # num_frozen_tokens: checks_prompt_relatives
}


def _fail(reason: str, detail: str, **context: Any) -> NoReturn:
    context.setdefault("file", "adapter_config.json")
    raise InvalidAdapterConfig(detail, reason=reason, context=context)


def load_config_json(data: bytes, *, max_bytes: int = MAX_CONFIG_BYTES) -> dict[str, Any]:
    """Decode config bytes into a dict: size cap, strict UTF-8 JSON object, no duplicate keys.

    Raises:
        InvalidAdapterConfig: ``too_large``, ``malformed_json``, ``duplicate_key``.
    """
    if len(data) > max_bytes:
        _fail("too_large", f"adapter_config.json larger than {max_bytes} bytes", size=len(data))
    try:
        decoded = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=no_duplicates,
            parse_constant=reject_constant,
        )
    except DuplicateKey as exc:
        _fail("duplicate_key", "duplicate key in adapter_config.json", field=exc.key[:100])
    except (UnicodeDecodeError, ValueError, RecursionError):
        _fail("malformed_json", "adapter_config.json is not valid JSON")
    if not isinstance(decoded, dict):
        _fail("malformed_json", "adapter_config.json is not a JSON object")
    return decoded


def parse_config(
    data: bytes,
    *,
    max_bytes: int = MAX_CONFIG_BYTES,
    regex_limits: RegexLimits | None = None,
) -> AdapterConfig:
    """Parse and type-check ``adapter_config.json`` bytes.

    Raises:
        InvalidAdapterConfig: see the module docstring.
        UnknownPeftType: ``peft_type`` is not a peft method.
    """
    return config_from_dict(load_config_json(data, max_bytes=max_bytes), regex_limits=regex_limits)


def config_from_dict(
    raw: Mapping[str, Any], *, regex_limits: RegexLimits | None = None
) -> AdapterConfig:
    """Type-check an already decoded config object (see :func:`parse_config`)."""
    peft_type = raw.get("peft_type")
    if peft_type is None:
        _fail("missing_peft_type", "adapter_config.json has no peft_type")
    if not isinstance(peft_type, str):
        _fail("schema", "peft_type must be a string", field="peft_type")
    if peft_type not in KNOWN_PEFT_TYPES:
        shown = peft_type[:100]
        context = {"file": "adapter_config.json", "field": "peft_type"}
        if peft_type in PEFT_TYPES:
            why = REFUSED_WHY.get(peft_type, "no checks written for its saved tensors yet")
            raise UnknownPeftType(
                f"peft_type {shown}: a peft method whose saved tensors this registry cannot check,"
                f" so it is refused rather than stored unchecked: {why}",
                reason="not_validated",
                context={**context, "peft_type": shown, "why": why},
            )
        raise UnknownPeftType(f"unknown peft_type {shown!r}", reason=shown, context=context)
    refuse_target_parameters(raw, peft_type)
    validators = {**_COMMON, **FIELDS_BY_TYPE.get(peft_type, _TARGETING)}
    values: dict[str, Any] = {}
    for name, check in validators.items():
        value = raw.get(name)
        if value is None:
            continue  # peft's default
        try:
            values[name] = check(value)
        except _SchemaError as exc:
            _fail("schema", f"{name} {exc}", field=name)
    cfg = AdapterConfig(
        peft_type=peft_type,
        raw=dict(raw),
        patterns=PatternSet(regex_limits or RegexLimits()),
        **values,
    )
    compile_config_patterns(cfg)
    return cfg
