"""peft's module matching: ``target_modules``/``exclude_modules``/``layers_to_transform`` and the
``rank_pattern``/``alpha_pattern`` key lookup, reimplemented without torch."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from registry.validation.config import AdapterConfig, TargetSpec


def _spec_matches(module: str, spec: tuple[str, ...] | str) -> bool:
    if isinstance(spec, str):
        return re.fullmatch(spec, module) is not None
    return any(module == t or module.endswith("." + t) for t in spec)


def module_is_targeted(module: str, cfg: AdapterConfig) -> bool:
    """Mirror peft's ``check_target_module_exists`` (exclude, then target, then layer filter).

    Returns True when ``target_modules`` is unset (peft then used a per-architecture default).
    """
    if cfg.exclude_modules is not None and _spec_matches(module, cfg.exclude_modules):
        return False
    spec = cfg.target_modules
    if spec is None:
        return True
    if isinstance(spec, str):
        return _spec_matches(module, spec)
    if module in spec:
        return True  # an exact name bypasses the layer filter, as in peft
    if not _spec_matches(module, spec):
        return False
    if not cfg.layers_to_transform:
        return True
    index: re.Match[str] | None = None
    if not cfg.layers_pattern:
        index = re.match(r".*\.[^.]*\.(\d+)\.", module)
    else:
        for pattern in cfg.layers_pattern:
            index = re.match(rf".*\.{pattern}\.(\d+)\.", module)
            if index is not None:
                break
    return index is not None and int(index.group(1)) in cfg.layers_to_transform


def spec_matches(module: str, spec: TargetSpec) -> bool:
    """Return True when ``module`` matches a target-style spec (regex string or name list)."""
    return spec is not None and _spec_matches(module, spec)


def pattern_lookup(pattern: Mapping[str, Any], module: str) -> Any | None:
    """Return the ``rank_pattern``/``alpha_pattern`` value for ``module`` (peft's
    ``get_pattern_key``: the first key that equals the module path or matches its dotted
    suffix as a regex), or None when no key applies."""
    if module in pattern:
        return pattern[module]
    for key, value in pattern.items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return None
