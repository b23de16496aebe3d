"""peft's module matching: ``target_modules``/``exclude_modules``/``layers_to_transform`` and the
``rank_pattern``/``alpha_pattern`` key lookup, reimplemented without torch.

Every regex runs through the config's :class:`~registry.validation.patterns.PatternSet`: the same
answers as peft's ``re`` calls, in bounded time (``pattern_too_complex`` when a budget runs out).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from registry.validation.config import AdapterConfig, TargetSpec
from registry.validation.patterns import (
    DEFAULT_LAYERS_REGEX,
    EARLIER_LAYERS_REGEX,
    Names,
    layers_regex,
    rank_key_pattern,
)


def _spec_matches(cfg: AdapterConfig, module: str, spec: tuple[str, ...] | str) -> bool:
    if isinstance(spec, str):
        return cfg.patterns.fullmatch(spec, module)
    return _names(spec).match(module)


def _names(spec: tuple[str, ...]) -> Names:
    """The config's name lists are :class:`Names` already (their set cached); others are wrapped."""
    return spec if isinstance(spec, Names) else Names(spec)


def module_is_targeted(module: str, cfg: AdapterConfig) -> bool:
    """Mirror peft's ``check_target_module_exists`` (exclude, then target, then layer filter).

    Returns True when ``target_modules`` is unset (peft then used a per-architecture default).
    """
    if cfg.exclude_modules is not None and _spec_matches(cfg, module, cfg.exclude_modules):
        return False
    spec = cfg.target_modules
    if spec is None:
        return True
    if isinstance(spec, str):
        return _spec_matches(cfg, module, spec)
    if module in _names(spec).names:
        return True  # an exact name bypasses the layer filter, as in peft
    if not _spec_matches(cfg, module, spec):
        return False
    if not cfg.layers_to_transform:
        return True
    # peft 0.21 reads a module's layer index from the first numbered segment of its path, earlier
    # releases from the last: they differ where a path has two (T5's ``block.1.layer.0``, MoE
    # ``layers.1.experts.0``), and adapters saved by either must validate.
    return any(
        index is not None and int(index) in cfg.layers_to_transform
        for index in (_layer_index(cfg, module, True), _layer_index(cfg, module, False))
    )


def _layer_index(cfg: AdapterConfig, module: str, first: bool) -> str | None:
    if not cfg.layers_pattern:
        regex = DEFAULT_LAYERS_REGEX if first else EARLIER_LAYERS_REGEX
        return cfg.patterns.match_group(regex, module, 1)
    for pattern in cfg.layers_pattern:
        index = cfg.patterns.match_group(layers_regex(pattern, first=first), module, 1)
        if index is not None:
            return index
    return None


def spec_matches(cfg: AdapterConfig, module: str, spec: TargetSpec) -> bool:
    """Return True when ``module`` matches a target-style spec (regex string or name list)."""
    return spec is not None and _spec_matches(cfg, module, spec)


def pattern_lookup(cfg: AdapterConfig, pattern: Mapping[str, Any], module: str) -> Any | None:
    """Return the ``rank_pattern``/``alpha_pattern`` value for ``module`` (peft's
    ``get_pattern_key``: the first key that equals the module path or matches its dotted
    suffix as a regex), or None when no key applies."""
    if module in pattern:
        return pattern[module]
    for key, value in pattern.items():
        if cfg.patterns.matches(rank_key_pattern(key), module):
            return value
    return None
