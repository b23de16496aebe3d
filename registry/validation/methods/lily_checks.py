"""Lily's parameters shared across layers, counted once (peft 0.21.2,
``tuners/lily/model.py`` ``_post_injection_hook``).

After injection peft groups the adapted layers by the target suffix that matched and the base
weight's shape, in the model's module order; within a group every layer uses the first layer's
``lily_B``, and each block of ``stride_A`` consecutive layers uses its first layer's ``lily_A``.
The adapter file still names every layer's tensors (safetensors cannot alias, so peft saves
clones): those copies are left out of ``trainable_params``, which is then peft's own count of
trainable parameters. The checks of the table (shapes, missing tensors) ran before this.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from registry.errors import InvalidAdapterConfig
from registry.validation.manifest import BaseManifest
from registry.validation.module_order import module_order
from registry.validation.safetensors import TensorInfo

_PART = re.compile(r"(?P<module>.+)\.lily_(?P<part>[AB])\.weight")


def _suffix(module: str, targets: object, listed: frozenset[str]) -> str:
    """The target that matched ``module``: the longest of the ``listed`` targets it ends with
    (peft's ``endswith``, looked up by the path's own endings: one set, not a scan per module;
    a regex string is one target for every module), else its last name."""
    if isinstance(targets, str):
        return targets
    longest = next((module[i:] for i in range(len(module) + 1) if module[i:] in listed), None)
    return longest if longest is not None else module.rsplit(".", 1)[-1]


def shared_copies(
    tensors: Mapping[str, TensorInfo], *, stride_a: int, targets: object
) -> list[str]:
    """The saved tensors that are copies of another layer's ``lily_A``/``lily_B``."""
    parts: dict[str, dict[str, TensorInfo]] = {}
    for name, info in tensors.items():
        match = _PART.fullmatch(name)
        if match is not None:
            parts.setdefault(match["module"], {})[match["part"]] = info
    listed = (
        frozenset(t for t in targets if isinstance(t, str))
        if isinstance(targets, list)
        else frozenset()
    )
    groups: dict[tuple[str, tuple[int, ...], tuple[int, ...]], list[str]] = {}
    for module in sorted(parts, key=module_order):
        a, b = parts[module].get("A"), parts[module].get("B")
        # (in, out) of the base weight, as the table checked them: A [r, in], B [num_B * r, out].
        key = (_suffix(module, targets, listed), a.shape[1:] if a else (), b.shape[1:] if b else ())
        groups.setdefault(key, []).append(module)
    return sorted(_copies(groups.values(), parts, stride_a))


def _copies(
    groups: Iterable[list[str]], parts: Mapping[str, Mapping[str, TensorInfo]], stride_a: int
) -> Iterable[str]:
    for modules in groups:
        for i, module in enumerate(modules):
            if i > 0 and "B" in parts[module]:
                yield parts[module]["B"].name
            if i % stride_a and "A" in parts[module]:
                yield parts[module]["A"].name


def count_lily(
    cfg: Any, tensors: Mapping[str, TensorInfo], base: BaseManifest | None, found: Any
) -> None:
    """Leave the copies of shared ``lily_A``/``lily_B`` out of ``trainable_params``.

    Raises:
        InvalidAdapterConfig: ``schema`` (``stride_A`` not an integer >= 1, as peft refuses it).
    """
    stride = cfg.raw.get("stride_A", 1)
    if stride is None:
        stride = 1
    if type(stride) is not int or stride < 1:
        raise InvalidAdapterConfig(
            "stride_A must be an integer >= 1",
            reason="schema",
            context={"file": "adapter_config.json", "field": "stride_A"},
        )
    copies = shared_copies(tensors, stride_a=stride, targets=cfg.raw.get("target_modules"))
    found.buffers = sorted({*found.buffers, *copies})
