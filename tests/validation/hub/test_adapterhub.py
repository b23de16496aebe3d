"""AdapterHub bottleneck adapters (made by the real ``adapters`` library: make_fixtures.py)
validate against their base; each broken variant gives its code and reason."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from registry.errors import AdapterInvalid
from registry.validation import ValidationReport, validate_adapter
from registry.validation.manifest import read_base_dir
from registry.validation.source import ByteSource, FileSource
from tests.fixtures.peft import fixtures, path_of

FIXTURES = Path(__file__).parent / "fixtures"
BASE = FIXTURES / "bert-base"
Tensors = dict[str, np.ndarray]


def validate(adapter: Path, base: Path | None = BASE) -> ValidationReport:
    files: dict[str, ByteSource] = {p.name: FileSource(p) for p in adapter.iterdir()}
    return validate_adapter(files, base=read_base_dir(base) if base is not None else None)


def refused(adapter: Path, base: Path | None = BASE) -> AdapterInvalid:
    with pytest.raises(AdapterInvalid) as info:
        validate(adapter, base)
    return info.value


def variant(
    name: str,
    out: Path,
    tensors: Callable[[Tensors], None] | None = None,
    config: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    shutil.copytree(FIXTURES / name, out)
    if tensors is not None:
        weights = load_file(out / "adapter.safetensors")
        tensors(weights)
        save_file(weights, out / "adapter.safetensors")
    if config is not None:
        raw = json.loads((out / "adapter_config.json").read_text())
        config(raw)
        (out / "adapter_config.json").write_text(json.dumps(raw))
    return out


@pytest.mark.parametrize(
    ("name", "peft_type", "width", "modules"),
    [
        ("seq", "ADAPTERHUB_SEQ_BN", 8, 2),
        ("double", "ADAPTERHUB_DOUBLE_SEQ_BN", 4, 4),
        ("par", "ADAPTERHUB_PAR_BN", 16, 2),
    ],
)
def test_real_adapters_validate(name: str, peft_type: str, width: int, modules: int) -> None:
    for base in (BASE, None):
        report = validate(FIXTURES / name, base)
        assert (report.peft_type, report.r, len(report.target_modules)) == (
            peft_type,
            width,
            modules,
        )
        assert report.checked_against_base is (base is not None)
    assert "model_head.safetensors" in validate(FIXTURES / "seq").files


def _first(t: Tensors, suffix: str) -> str:
    return next(k for k in sorted(t) if k.endswith(suffix))


def test_broken_variants(tmp_path: Path) -> None:
    def narrow(t: Tensors) -> None:
        key = _first(t, "adapter_up.weight")
        t[key] = t[key][:, :2].copy()

    def drop(t: Tensors) -> None:
        del t[_first(t, "adapter_up.bias")]

    def rename(t: Tensors) -> None:
        key = _first(t, "adapter_up.bias")
        t[key.replace("hub_seq", "other")] = t.pop(key)

    def drop_attention(t: Tensors) -> None:
        for key in [k for k in t if "layer.1.attention" in k]:
            del t[key]

    cases: list[tuple[Path, str, str]] = [
        (variant("seq", tmp_path / "a", tensors=narrow), "inconsistent_adapter", "shape_mismatch"),
        (variant("seq", tmp_path / "b", tensors=drop), "inconsistent_adapter", "missing_tensor"),
        (
            variant("seq", tmp_path / "c", tensors=rename),
            "inconsistent_adapter",
            "unexpected_tensor",
        ),
        (
            variant("double", tmp_path / "d", tensors=drop_attention),
            "inconsistent_adapter",
            "missing_tensor",
        ),
        (
            variant("seq", tmp_path / "e", config=lambda c: c["config"].update(reduction_factor=2)),
            "inconsistent_adapter",
            "shape_mismatch",
        ),
        (
            variant("seq", tmp_path / "f", config=lambda c: c["config"].update(leave_out=[1])),
            "inconsistent_adapter",
            "unexpected_tensor",
        ),
        (
            variant(
                "seq", tmp_path / "g", config=lambda c: c["config"].update(reduction_factor="x")
            ),
            "invalid_adapter_config",
            "schema",
        ),
    ]
    for adapter, code, reason in cases:
        error = refused(adapter, None)
        assert (error.code, error.reason) == (code, reason), adapter.name


def test_against_the_wrong_base(tmp_path: Path) -> None:
    other_type = variant("seq", tmp_path / "t", config=lambda c: c.update(model_type="roberta"))
    error = refused(other_type)
    assert (error.code, error.reason) == ("incompatible_base", "model_type_mismatch")
    wide = variant("seq", tmp_path / "w", config=lambda c: c.update(hidden_size=64))
    error = refused(wide, None)  # its own tensors are 32 wide
    assert (error.code, error.reason) == ("inconsistent_adapter", "shape_mismatch")

    def deeper(t: Tensors) -> None:
        for key in list(t):
            t[key.replace("layer.1.", "layer.7.")] = t.pop(key)

    error = refused(variant("seq", tmp_path / "l", tensors=deeper))
    assert (error.code, error.reason) == ("incompatible_base", "missing_modules")
    small = tmp_path / "small-base"
    shutil.copytree(BASE, small)
    cfg = json.loads((small / "config.json").read_text())
    (small / "config.json").write_text(json.dumps({**cfg, "hidden_size": 64}))
    error = refused(FIXTURES / "seq", small)
    assert (error.code, error.reason) == ("incompatible_base", "shape_mismatch")


def test_the_default_pickle_save_is_refused_with_the_fix() -> None:
    error = refused(FIXTURES / "seq_pickle")
    assert (error.code, error.reason) == ("forbidden_file", "pickle")
    assert "use_safetensors=True" in error.detail
    assert "adapters convert" in error.detail


def test_a_converted_pickle_save_validates(tmp_path: Path) -> None:
    from registry.maths.convert import convert_dir

    convert_dir(FIXTURES / "seq_pickle", tmp_path / "converted")
    assert not (tmp_path / "converted" / "pytorch_adapter.bin").exists()
    report = validate(tmp_path / "converted")
    assert (report.peft_type, report.r) == ("ADAPTERHUB_SEQ_BN", 8)


def test_adapterhub_files_are_refused_in_a_peft_adapter(tmp_path: Path) -> None:
    source = next(path_of(a) for a in fixtures("adapter") if a["expected"] == "valid")
    mixed = tmp_path / "mixed"
    shutil.copytree(source, mixed)
    shutil.copy(FIXTURES / "seq" / "adapter.safetensors", mixed / "adapter.safetensors")
    error = refused(mixed, None)
    assert (error.code, error.reason) == ("forbidden_file", "forbidden_name")


def test_text_extras_of_an_adapterhub_adapter_are_checked_whole(tmp_path: Path) -> None:
    card = variant("seq", tmp_path / "card")
    (card / "README.md").write_bytes(b"# card\n" + b"x" * 4096 + b"\x00")  # NUL past the head
    error = refused(card)
    assert (error.code, error.reason) == ("forbidden_file", "binary")
