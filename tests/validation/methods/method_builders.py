"""Real adapters made with peft on tiny random models, validated from their directory, and broken
variants derived from them (a tensor dropped, renamed or reshaped; a config key changed)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import peft
import pytest
from safetensors.numpy import load_file, save_file

from registry.errors import AdapterInvalid
from registry.validation import ValidationReport, validate_adapter
from registry.validation.manifest import read_base_dir
from registry.validation.source import ByteSource, FileSource
from tests.maths.tiny import save_adapter

Tensors = dict[str, np.ndarray]


def dir_files(adapter_dir: Path) -> dict[str, ByteSource]:
    return {p.name: FileSource(p) for p in sorted(adapter_dir.iterdir()) if p.is_file()}


def validate_dir(adapter_dir: Path, base_dir: Path | None) -> ValidationReport:
    """``validate_adapter`` on a directory, against the base checkpoint in ``base_dir``."""
    base = read_base_dir(base_dir) if base_dir is not None else None
    return validate_adapter(dir_files(adapter_dir), base=base)


def assert_valid_with_and_without_base(adapter: Path, base: Path, peft_type: str) -> None:
    """``adapter`` validates as ``peft_type`` against ``base``, and alone with the same targets."""
    report = validate_dir(adapter, base)
    assert report.peft_type == peft_type
    assert report.checked_against_base
    assert validate_dir(adapter, None).target_modules == report.target_modules


def invalid_dir(adapter_dir: Path, base_dir: Path | None) -> AdapterInvalid:
    """The error validating ``adapter_dir`` raises (fails the test if it is valid)."""
    with pytest.raises(AdapterInvalid) as info:
        validate_dir(adapter_dir, base_dir)
    return info.value


def build(base_dir: Path, config: peft.PeftConfig, out: Path) -> Path:
    """A real adapter: peft wraps the base with ``config``, perturbs it, saves it."""
    return save_adapter(base_dir, config, out)


def variant(
    adapter_dir: Path,
    out: Path,
    tensors: Callable[[Tensors], Tensors] | None = None,
    config: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Path:
    """A copy of ``adapter_dir`` with its tensors and/or config rewritten by the callables."""
    shutil.copytree(adapter_dir, out)
    if tensors is not None:
        weights = out / "adapter_model.safetensors"
        changed = tensors(dict(load_file(weights)))
        weights.unlink()
        save_file(changed, weights)
    if config is not None:
        path = out / "adapter_config.json"
        path.write_text(json.dumps(config(json.loads(path.read_text()))))
    return out


def first(tensors: Tensors, suffix: str) -> str:
    """The first tensor name (sorted) ending with ``suffix``."""
    return next(name for name in sorted(tensors) if name.endswith(suffix))


def drop(suffix: str) -> Callable[[Tensors], Tensors]:
    def edit(t: Tensors) -> Tensors:
        del t[first(t, suffix)]
        return t

    return edit


def reshape(suffix: str, shape: tuple[int, ...]) -> Callable[[Tensors], Tensors]:
    def edit(t: Tensors) -> Tensors:
        name = first(t, suffix)
        t[name] = np.zeros(shape, dtype=t[name].dtype)
        return t

    return edit


def add(name: str, shape: tuple[int, ...]) -> Callable[[Tensors], Tensors]:
    def edit(t: Tensors) -> Tensors:
        t[name] = np.zeros(shape, dtype=np.float32)
        return t

    return edit


def set_key(key: str, value: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def edit(c: dict[str, Any]) -> dict[str, Any]:
        return {**c, key: value}

    return edit


def assert_error(error: AdapterInvalid, code: str, reason: str) -> None:
    assert (error.code, error.context.get("reason")) == (code, reason), (error, error.context)
