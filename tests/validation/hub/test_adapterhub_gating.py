"""``use_gating``: a Houlsby adapter and prefix tuning made by the real ``adapters`` library with
gates (``make_fixtures.py --more``: ``gated``, ``prefix_gated_pickle``) validate, gates and all;
a gate missing, of the wrong shape, or present without ``use_gating`` is refused with its code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from registry.maths.convert import convert_dir
from tests.validation.hub.test_adapterhub import BASE, FIXTURES, validate
from tests.validation.hub.test_adapterhub_more import ConfigEdit, Edit, Tensors, expect, first, make

BAD = "inconsistent_adapter"


def test_a_gated_bottleneck_adapter_validates() -> None:
    names = load_file(FIXTURES / "gated" / "adapter.safetensors")
    gates = sorted(k for k in names if ".gate." in k)
    assert len(gates) == 8  # weight and bias at 2 positions of 2 layers
    assert names[first(names, "gate.weight")].shape == (1, 32)
    for base in (BASE, None):
        report = validate(FIXTURES / "gated", base)
        assert (report.peft_type, report.tensor_count) == ("ADAPTERHUB_DOUBLE_SEQ_BN", 24)


def test_broken_gated_bottleneck_adapters(tmp_path: Path) -> None:
    def gated(out: str, tensors: Edit | None = None, cfg: ConfigEdit | None = None) -> Path:
        return make(FIXTURES / "gated", tmp_path / out, tensors=tensors, cfg=cfg)

    def drop_gate(t: Tensors) -> None:
        del t[first(t, "gate.bias")]

    def wide_gate(t: Tensors) -> None:
        key = first(t, "gate.weight")
        t[key] = np.zeros((2, 32), "f4")

    expect(gated("a", tensors=drop_gate), BAD, "missing_tensor")
    expect(gated("b", tensors=wide_gate), BAD, "shape_mismatch")
    ungated = gated("c", cfg=lambda c: c["config"].update(use_gating=False))
    assert "not saved by this config" in expect(ungated, BAD, "unexpected_tensor")
    # and an ungated adapter's config saying use_gating: its gates are missing
    claims = make(
        FIXTURES / "double",
        tmp_path / "d",
        cfg=lambda c: c["config"].update(use_gating=True),
    )
    expect(claims, BAD, "missing_tensor")


@pytest.fixture(scope="module")
def gated_prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gated") / "prefix"
    assert convert_dir(FIXTURES / "prefix_gated_pickle", out) == ["adapter.safetensors"]
    return out


def test_gated_prefix_tuning_validates_after_convert(gated_prefix: Path) -> None:
    names = sorted(load_file(gated_prefix / "adapter.safetensors"))
    assert sum(".prefix_gates.ptgate." in n for n in names) == 4  # per layer: weight, bias
    for base in (BASE, None):
        report = validate(gated_prefix, base)
        assert (report.peft_type, report.r, report.tensor_count) == (
            "ADAPTERHUB_PREFIX_TUNING",
            4,
            9,
        )


def test_broken_gated_prefix_tuning(tmp_path: Path, gated_prefix: Path) -> None:
    def prefix(out: str, tensors: Edit | None = None, cfg: ConfigEdit | None = None) -> Path:
        return make(gated_prefix, tmp_path / out, tensors=tensors, cfg=cfg)

    def drop_layer(t: Tensors) -> None:
        for key in [k for k in t if "layer.1.attention.self.prefix_tuning.prefix_gates" in k]:
            del t[key]

    def drop_bias(t: Tensors) -> None:
        del t[first(t, "prefix_gates.ptgate.bias")]

    def wide(t: Tensors) -> None:
        t[first(t, "prefix_gates.ptgate.weight")] = np.zeros((1, 16), "f4")

    detail = expect(prefix("a", tensors=drop_layer), BAD, "missing_tensor")
    assert "1 layer gates for a prefix over 2 layers" in detail
    expect(prefix("b", tensors=drop_bias), BAD, "missing_tensor")
    expect(prefix("c", tensors=wide), BAD, "shape_mismatch")
    off = prefix("d", cfg=lambda c: c["config"].update(use_gating=False))
    assert "use_gating is off" in expect(off, BAD, "unexpected_tensor")
