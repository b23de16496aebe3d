"""Compacter / Compacter++, AdapterFusion, prefix tuning (converted) and prediction heads made by
the real ``adapters`` library (``make_fixtures.py --more``) validate against their base; each
broken variant gives its exact code and reason."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from registry.maths.convert import convert_dir
from tests.validation.hub.test_adapterhub import BASE, FIXTURES, refused, validate

Tensors = dict[str, np.ndarray]
Edit = Callable[[Tensors], None]
ConfigEdit = Callable[[dict[str, Any]], None]


def make(
    src: Path,
    out: Path,
    weights: str = "adapter.safetensors",
    config: str = "adapter_config.json",
    tensors: Edit | None = None,
    cfg: ConfigEdit | None = None,
) -> Path:
    shutil.copytree(src, out)
    if tensors is not None:
        loaded = load_file(out / weights)
        tensors(loaded)
        save_file(loaded, out / weights)
    if cfg is not None:
        raw = json.loads((out / config).read_text())
        cfg(raw)
        (out / config).write_text(json.dumps(raw))
    return out


def expect(adapter: Path, code: str, reason: str, base: Path | None = BASE) -> str:
    error = refused(adapter, base)
    assert (error.code, error.reason) == (code, reason), (adapter.name, error.detail)
    return error.detail


def first(t: Tensors, suffix: str) -> str:
    return next(k for k in sorted(t) if k.endswith(suffix))


def base_with(tmp: Path, **changes: Any) -> Path:
    out = tmp / ("base-" + "-".join(changes))
    shutil.copytree(BASE, out)
    cfg = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**cfg, **changes}))
    return out


def relayer(t: Tensors) -> None:
    for key in list(t):
        t[key.replace("layer.1.", "layer.7.")] = t.pop(key)


# --- Compacter ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "peft_type", "modules", "tensors"),
    [
        ("cp", "ADAPTERHUB_COMPACTER", 4, 25),
        ("cpp", "ADAPTERHUB_COMPACTER_PP", 2, 13),
        ("cp_shared", "ADAPTERHUB_COMPACTER_PP", 2, 12),
    ],
)
def test_real_compacters_validate(name: str, peft_type: str, modules: int, tensors: int) -> None:
    for base in (BASE, None):
        report = validate(FIXTURES / name, base)
        assert (report.peft_type, report.r, len(report.target_modules)) == (peft_type, 8, modules)
        assert report.tensor_count == tensors


def test_broken_compacters(tmp_path: Path) -> None:
    cp = FIXTURES / "cp"

    def narrow(t: Tensors) -> None:
        key = first(t, "adapter_up.W_right")
        t[key] = t[key][:, :, :4].copy()

    def drop_shared(t: Tensors) -> None:
        del t["bert.shared_parameters.cp.phm_rule"]

    def extra(t: Tensors) -> None:
        t[first(t, "adapter_up.W_left").replace("W_left", "W")] = np.zeros((4, 2, 8), "float32")

    def extra_shared(t: Tensors) -> None:
        t["bert.shared_parameters.cp.W_down"] = np.zeros((4, 8, 2), "float32")

    def drop_bias(t: Tensors) -> None:
        del t[first(t, "adapter_down.0.b")]

    inconsistent = "inconsistent_adapter"
    detail = expect(make(cp, tmp_path / "a", tensors=narrow), inconsistent, "shape_mismatch")
    assert "expected [4, 1, 8], got [4, 1, 4]" in detail
    expect(make(cp, tmp_path / "b", tensors=drop_shared), inconsistent, "missing_tensor")
    expect(make(cp, tmp_path / "c", tensors=extra), inconsistent, "unexpected_tensor")
    expect(make(cp, tmp_path / "d", tensors=extra_shared), inconsistent, "unexpected_tensor")
    expect(make(cp, tmp_path / "e", tensors=drop_bias), inconsistent, "missing_tensor")
    # The config decides which tensors exist: per-layer rules when the rule is not shared.
    unshared = make(cp, tmp_path / "f", cfg=lambda c: c["config"].update(shared_phm_rule=False))
    assert "phm_rule missing" in expect(unshared, inconsistent, "missing_tensor")
    unbiased = make(cp, tmp_path / "g", cfg=lambda c: c["config"].update(phm_bias=False))
    expect(unbiased, inconsistent, "unexpected_tensor")
    rank = make(cp, tmp_path / "h", cfg=lambda c: c["config"].update(phm_rank=2))
    expect(rank, inconsistent, "shape_mismatch")
    odd = make(cp, tmp_path / "i", cfg=lambda c: c["config"].update(phm_dim=3))
    assert "not divisible by phm_dim" in expect(odd, "invalid_adapter_config", "schema")
    zero = make(cp, tmp_path / "j", cfg=lambda c: c["config"].update(phm_rank=0))
    expect(zero, "invalid_adapter_config", "schema")
    parallel = make(cp, tmp_path / "k", cfg=lambda c: c["config"].update(is_parallel=True))
    expect(parallel, "unknown_peft_type", "not_validated")
    shared_w = FIXTURES / "cp_shared"
    unshared_w = make(
        shared_w, tmp_path / "l", cfg=lambda c: c["config"].update(shared_W_phm=False)
    )
    expect(unshared_w, inconsistent, "missing_tensor")


def test_compacter_against_the_wrong_base(tmp_path: Path) -> None:
    deeper = make(FIXTURES / "cpp", tmp_path / "deep", tensors=relayer)
    expect(deeper, "incompatible_base", "missing_modules")
    expect(
        FIXTURES / "cpp", "incompatible_base", "shape_mismatch", base_with(tmp_path, hidden_size=64)
    )
    roberta = make(FIXTURES / "cpp", tmp_path / "r", cfg=lambda c: c.update(model_type="roberta"))
    expect(roberta, "incompatible_base", "model_type_mismatch")


# --- AdapterFusion -----------------------------------------------------------------------

FUSION = "model_adapter_fusion.safetensors"
FUSION_CFG = "adapter_fusion_config.json"


def fusion(out: Path, tensors: Edit | None = None, cfg: ConfigEdit | None = None) -> Path:
    return make(FIXTURES / "fusion", out, FUSION, FUSION_CFG, tensors, cfg)


def test_real_fusions_validate() -> None:
    for name, names, tensors in (("fusion", "fa, fb", 10), ("fusion_dense", "fb, fc", 4)):
        for base in (BASE, None):
            report = validate(FIXTURES / name, base)
            assert (report.peft_type, report.r, report.tensor_count) == (
                "ADAPTERHUB_FUSION",
                None,
                tensors,
            )
            assert report.target_modules == [f"bert.encoder.layer.{i}.output" for i in (0, 1)]
            assert any(f"composes the adapters {names}" in w for w in report.warnings)


def test_broken_fusions(tmp_path: Path) -> None:
    def narrow(t: Tensors) -> None:
        key = first(t, "query.weight")
        t[key] = t[key][:, :16].copy()

    def value_bias(t: Tensors) -> None:
        t[first(t, "value.weight").replace("weight", "bias")] = np.zeros(32, "float32")

    def drop(t: Tensors) -> None:
        del t["bert.encoder.layer.1.output.adapter_fusion_layer.fa,fb.key.bias"]

    def attention_once(t: Tensors) -> None:
        key = "bert.encoder.layer.0.output.adapter_fusion_layer.fa,fb.key.bias"
        t[key.replace(".output.", ".attention.output.")] = t[key]

    def elsewhere(t: Tensors) -> None:
        key = first(t, "key.bias")
        t[key.replace(".output.", ".intermediate.")] = t.pop(key)

    bad = "inconsistent_adapter"
    expect(fusion(tmp_path / "a", tensors=narrow), bad, "shape_mismatch")
    expect(fusion(tmp_path / "b", tensors=value_bias), bad, "unexpected_tensor")
    expect(fusion(tmp_path / "c", tensors=drop), bad, "missing_tensor")
    expect(fusion(tmp_path / "d", tensors=attention_once), bad, "missing_tensor")
    expect(fusion(tmp_path / "e", tensors=elsewhere), bad, "unexpected_tensor")
    no_value = fusion(tmp_path / "f", cfg=lambda c: c["config"].update(value=False))
    expect(no_value, bad, "unexpected_tensor")
    schema = ("invalid_adapter_config", "schema")
    expect(fusion(tmp_path / "g", cfg=lambda c: c.update(name="fa,fc")), *schema)
    expect(fusion(tmp_path / "h", cfg=lambda c: c.update(adapter_names=["fa"], name="fa")), *schema)
    expect(fusion(tmp_path / "i", cfg=lambda c: c.update(hidden_size="32")), *schema)
    expect(fusion(tmp_path / "j", tensors=relayer), "incompatible_base", "missing_modules")
    expect(
        FIXTURES / "fusion",
        "incompatible_base",
        "shape_mismatch",
        base_with(tmp_path, hidden_size=64),
    )


def test_fusion_files_are_refused_in_a_peft_adapter(tmp_path: Path) -> None:
    mixed = make(FIXTURES / "seq", tmp_path / "mixed")
    (mixed / "adapter.safetensors").rename(mixed / "adapter_model.safetensors")
    shutil.copy(FIXTURES / "fusion" / FUSION, mixed / FUSION)
    expect(mixed, "forbidden_file", "forbidden_name", None)


# --- Prefix tuning -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("prefix")
    for name in ("prefix_pickle", "prefix_flat_pickle"):
        assert convert_dir(FIXTURES / name, out / name) == ["adapter.safetensors"]
    return {"mlp": out / "prefix_pickle", "flat": out / "prefix_flat_pickle"}


def test_prefix_tuning_pickles_are_refused_with_the_fix() -> None:
    for name in ("prefix_pickle", "prefix_flat_pickle"):
        expect(FIXTURES / name, "forbidden_file", "pickle")


def test_converted_prefix_tuning_keeps_the_pool_and_validates(converted: dict[str, Path]) -> None:
    names = sorted(load_file(converted["mlp"] / "adapter.safetensors"))
    pool = "bert.prefix_tuning.prefix_tunings.pt.self_prefix."
    assert names == [
        pool + p
        for p in (
            "control_trans.0.bias",
            "control_trans.0.weight",
            "control_trans.2.bias",
            "control_trans.2.weight",
            "wte.weight",
        )
    ]
    for kind, length, tensors in (("mlp", 5, 5), ("flat", 3, 1)):
        for base in (BASE, None):
            report = validate(converted[kind], base)
            assert (report.peft_type, report.r, report.tensor_count) == (
                "ADAPTERHUB_PREFIX_TUNING",
                length,
                tensors,
            )


def test_broken_prefix_tuning(tmp_path: Path, converted: dict[str, Path]) -> None:
    def prefix(out: str, tensors: Edit | None = None, cfg: ConfigEdit | None = None) -> Path:
        return make(converted["mlp"], tmp_path / out, tensors=tensors, cfg=cfg)

    def narrow(t: Tensors) -> None:
        key = first(t, "wte.weight")
        t[key] = t[key][:, :16].copy()

    def drop(t: Tensors) -> None:
        del t[first(t, "control_trans.0.bias")]

    def copy_in_layer(t: Tensors) -> None:
        key = first(t, "wte.weight")
        layer = "bert.encoder.layer.0.attention.self.prefix_tuning.pool."
        t[layer + key.removeprefix("bert.")] = t[key]

    def cross(t: Tensors) -> None:
        t[first(t, "wte.weight").replace("self_prefix", "cross_prefix")] = np.zeros((5, 32), "f4")

    def layers3(t: Tensors) -> None:
        for part in ("control_trans.2.weight", "control_trans.2.bias"):
            key = first(t, part)
            t[key] = np.concatenate([t[key], t[key][:64]])

    bad = "inconsistent_adapter"
    expect(prefix("a", tensors=narrow), bad, "shape_mismatch")
    expect(prefix("b", tensors=drop), bad, "missing_tensor")
    assert "per-layer copies" in expect(
        prefix("c", tensors=copy_in_layer), bad, "unexpected_tensor"
    )
    expect(prefix("d", tensors=cross), "unknown_peft_type", "not_validated")
    longer = prefix("e", cfg=lambda c: c["config"].update(prefix_length=6))
    expect(longer, bad, "shape_mismatch")
    flat = prefix("f", cfg=lambda c: c["config"].update(flat=True))
    expect(flat, bad, "unexpected_tensor")
    expect(
        prefix("g", cfg=lambda c: c["config"].update(bottleneck_size=0)),
        "invalid_adapter_config",
        "schema",
    )
    # Against the base: 3 layers of prefixes, a left-out layer, another hidden size or model.
    detail = expect(prefix("h", tensors=layers3), "incompatible_base", "shape_mismatch")
    assert "covers 3 layers, the base has 2" in detail
    left_out = prefix("i", cfg=lambda c: c["config"].update(leave_out=[1]))
    expect(left_out, "incompatible_base", "shape_mismatch")
    expect(
        converted["mlp"], "incompatible_base", "shape_mismatch", base_with(tmp_path, hidden_size=64)
    )
    roberta = prefix("j", cfg=lambda c: c.update(model_type="roberta"))
    expect(roberta, "incompatible_base", "model_type_mismatch")


# --- Prediction heads --------------------------------------------------------------------

HEAD = "model_head.safetensors"
HEAD_CFG = "head_config.json"


def head(out: Path, tensors: Edit | None = None, cfg: ConfigEdit | None = None) -> Path:
    return make(FIXTURES / "seq", out, HEAD, HEAD_CFG, tensors, cfg)


def test_a_classification_head_is_checked(tmp_path: Path) -> None:
    assert validate(FIXTURES / "seq").warnings == []

    def narrow(t: Tensors) -> None:
        t["heads.hub_seq.4.weight"] = t["heads.hub_seq.4.weight"][:, :16].copy()

    def extra(t: Tensors) -> None:
        t["heads.hub_seq.7.bias"] = np.zeros(3, "float32")

    def drop(t: Tensors) -> None:
        del t["heads.hub_seq.1.bias"]

    bad = "inconsistent_adapter"
    expect(head(tmp_path / "a", tensors=narrow), bad, "shape_mismatch")
    expect(head(tmp_path / "b", tensors=extra), bad, "unexpected_tensor")
    expect(head(tmp_path / "c", tensors=drop), bad, "missing_tensor")
    labels = head(tmp_path / "d", cfg=lambda c: c["config"].update(num_labels=4))
    assert "4.bias: expected [4], got [3]" in expect(labels, bad, "shape_mismatch")
    one_layer = head(tmp_path / "e", cfg=lambda c: c["config"].update(layers=1))
    assert "1.bias: expected [3], got [32]" in expect(one_layer, bad, "shape_mismatch")
    no_bias = head(tmp_path / "f", cfg=lambda c: c["config"].update(bias=False))
    expect(no_bias, bad, "unexpected_tensor")
    no_activation = head(tmp_path / "g", cfg=lambda c: c["config"].update(activation_function=None))
    expect(no_activation, bad, "unexpected_tensor")  # the last linear layer is then index 3
    wide = head(tmp_path / "h", cfg=lambda c: c.update(hidden_size=64))
    expect(wide, bad, "shape_mismatch")
    lonely = head(tmp_path / "i")
    (lonely / HEAD_CFG).unlink()
    expect(lonely, bad, "missing_file")
    labels_text = head(tmp_path / "j", cfg=lambda c: c["config"].update(num_labels="3"))
    expect(labels_text, "invalid_adapter_config", "schema")


def test_other_head_types_are_listed_as_unchecked(tmp_path: Path) -> None:
    lm = head(tmp_path / "lm", cfg=lambda c: c["config"].update(head_type="causal_lm"))
    report = validate(lm)
    assert report.warnings == ["prediction head 'hub_seq' of type 'causal_lm': tensors not checked"]


# --- ln_before (pickle only: the norm is shared) -----------------------------------------


@pytest.mark.parametrize(
    ("name", "peft_type"),
    [("ln_before_pickle", "ADAPTERHUB_SEQ_BN"), ("cpp_ln_pickle", "ADAPTERHUB_COMPACTER_PP")],
)
def test_ln_before_adapters_convert_and_validate(tmp_path: Path, name: str, peft_type: str) -> None:
    expect(FIXTURES / name, "forbidden_file", "pickle")
    convert_dir(FIXTURES / name, tmp_path / "c")
    names = load_file(tmp_path / "c" / "adapter.safetensors")
    assert not [k for k in names if "adapter_norm_before" in k]  # kept as adapter_down.0
    assert len([k for k in names if ".adapter_down.0." in k]) == 4  # 2 layers: weight, bias
    report = validate(tmp_path / "c")
    assert (report.peft_type, report.r) == (peft_type, 8)

    def drop_norm(t: Tensors) -> None:
        del t[first(t, "adapter_down.0.bias")]

    broken = make(tmp_path / "c", tmp_path / "b", tensors=drop_norm)
    expect(broken, "inconsistent_adapter", "missing_tensor")


def test_fusion_files_beside_an_adapter_or_a_head_are_refused(tmp_path: Path) -> None:
    bundled = make(FIXTURES / "seq", tmp_path / "bundled")
    shutil.copy(FIXTURES / "fusion" / FUSION, bundled / FUSION)
    detail = expect(bundled, "forbidden_file", "forbidden_name")
    assert "uploaded on its own" in detail
    headed = make(FIXTURES / "fusion", tmp_path / "headed")
    for name in (HEAD, HEAD_CFG):
        shutil.copy(FIXTURES / "seq" / name, headed / name)
    expect(headed, "forbidden_file", "forbidden_name")
