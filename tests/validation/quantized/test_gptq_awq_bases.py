"""Pre-quantized GPTQ and AWQ bases (QLoRA): checkpoints packed in the libraries' layouts
(``make_gptq_awq``) keep their logical shapes in the manifest, a LoRA made on the plain model
validates against them, and packed tensors that disagree are refused."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import peft
import pytest
import torch
from safetensors.torch import load_file

from registry.errors import InvalidBaseModel, NotMergeable
from registry.maths.merge import merge
from registry.validation.manifest import read_base_dir
from tests.maths.tiny import save_adapter
from tests.validation.methods.method_builders import validate_dir
from tests.validation.quantized.make_gptq_awq import (
    awq_checkpoint,
    gptq_checkpoint,
    gptq_dequantize,
    rewrite,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

Q = "model.layers.0.self_attn.q_proj"
K = "model.layers.1.self_attn.k_proj"
Tensors = dict[str, torch.Tensor]
BUILDS: dict[str, Callable[[Path, Path], Path]] = {
    "gptq4": lambda p, o: gptq_checkpoint(p, o),
    "gptq3_act_order": lambda p, o: gptq_checkpoint(p, o, bits=3, desc_act=True, sym=False),
    "gptq2": lambda p, o: gptq_checkpoint(p, o, bits=2, group_size=64),
    "gptq8_one_group": lambda p, o: gptq_checkpoint(p, o, bits=8, group_size=-1),
    "awq_gemm": lambda p, o: awq_checkpoint(p, o),
    "awq_gemv": lambda p, o: awq_checkpoint(p, o, version="gemv"),
    "awq_gemm_not_convert": lambda p, o: awq_checkpoint(p, o, not_convert=["down_proj"]),
}


@pytest.fixture(scope="module", params=sorted(BUILDS))
def quantized(
    request: pytest.FixtureRequest, plain: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return BUILDS[request.param](plain, tmp_path_factory.mktemp("q") / request.param)


@pytest.fixture(scope="module")
def gptq(plain: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gptq_checkpoint(plain, tmp_path_factory.mktemp("q") / "gptq")


@pytest.fixture(scope="module")
def awq(plain: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return awq_checkpoint(plain, tmp_path_factory.mktemp("q") / "awq")


def test_the_manifest_keeps_logical_shapes(quantized: Path, plain: Path) -> None:
    manifest, reference = read_base_dir(quantized), read_base_dir(plain)
    raw = load_file(quantized / "model.safetensors")
    assert f"{Q}.qweight" in raw
    assert f"{Q}.weight" not in raw  # really packed on disk
    assert set(manifest.tensors) == set(reference.tensors)
    for name, (_, shape) in reference.tensors.items():
        assert manifest.tensors[name][1] == shape, name
    config = json.loads((quantized / "config.json").read_text())["quantization_config"]
    quant = manifest.quantization
    assert quant is not None
    assert (quant["method"], quant["bits"]) == (config["quant_method"], config["bits"])
    assert quant["group_size"] == config["group_size"]


def test_the_gptq_packing_round_trips(gptq: Path, plain: Path) -> None:
    """The builder's packing is real: unpacking gives the weight back to within a step."""
    raw, weight = load_file(gptq / "model.safetensors"), load_file(plain / "model.safetensors")
    parts = {p: raw[f"{Q}.{p}"] for p in ("qweight", "qzeros", "scales", "g_idx")}
    original = weight[f"{Q}.weight"].float().numpy()
    step = parts["scales"].float().numpy().max()
    assert np.abs(gptq_dequantize(parts, 4) - original).max() <= step
    assert len(np.unique(parts["qweight"].numpy())) > 100


def test_a_lora_made_on_the_plain_base_validates_against_the_quantized_one(
    quantized: Path, plain: Path, tmp_path: Path
) -> None:
    config = peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj", "down_proj"])
    adapter = save_adapter(plain, config, tmp_path / "lora")
    report = validate_dir(adapter, quantized)
    assert report.checked_against_base
    assert len(report.target_modules) == 6
    with pytest.raises(NotMergeable) as info:
        merge(adapter, quantized, tmp_path / "merged")
    assert info.value.context["reason"] == "quantized_base"


def _refused(base: Path, out: Path, edit: Callable[[Tensors], None]) -> dict[str, Any]:
    with pytest.raises(InvalidBaseModel) as info:
        read_base_dir(rewrite(base, out, edit))
    assert info.value.code == "invalid_base_model"
    assert info.value.reason == "bad_quantization", out.name
    return info.value.context


def _shrink(name: str, dim: int) -> Callable[[Tensors], None]:
    def edit(t: Tensors) -> None:
        t[name] = t[name].narrow(dim, 0, t[name].shape[dim] - 1).contiguous()

    return edit


def _drop(name: str) -> Callable[[Tensors], None]:
    def edit(t: Tensors) -> None:
        del t[name]

    return edit


def test_inconsistent_gptq_modules_are_refused(gptq: Path, tmp_path: Path) -> None:
    cases: dict[str, Callable[[Tensors], None]] = {
        "qzeros_shape": _shrink(f"{Q}.qzeros", 1),
        "qzeros_groups": _shrink(f"{K}.qzeros", 0),
        "scales_groups": _shrink(f"{K}.scales", 0),
        "g_idx_length": _shrink(f"{Q}.g_idx", 0),
        "missing_scales": _drop(f"{Q}.scales"),
        "missing_g_idx": _drop(f"{Q}.g_idx"),
        "missing_qweight": _drop(f"{K}.qweight"),
        "empty_qweight": lambda t: t.update(
            {f"{Q}.qweight": torch.zeros(0, 64, dtype=torch.int32)}
        ),
    }
    for case, edit in cases.items():
        context = _refused(gptq, tmp_path / case, edit)
        assert context["tensor"].startswith((Q, K)), case


def test_inconsistent_awq_modules_are_refused(awq: Path, tmp_path: Path) -> None:
    cases: dict[str, Callable[[Tensors], None]] = {
        "qzeros_shape": _shrink(f"{Q}.qzeros", 1),
        "scales_out": _shrink(f"{Q}.scales", 1),
        "missing_scales": _drop(f"{Q}.scales"),
        "plain_weight_too": lambda t: t.update({f"{Q}.weight": torch.zeros(64, 64)}),
    }
    for case, edit in cases.items():
        context = _refused(awq, tmp_path / case, edit)
        assert context["tensor"].startswith(Q), case


def _with_config(base: Path, out: Path, **changes: Any) -> Path:
    shutil.copytree(base, out)
    config = json.loads((out / "config.json").read_text())
    config["quantization_config"].update(changes)
    (out / "config.json").write_text(json.dumps(config))
    return out


@pytest.mark.parametrize(
    ("which", "changes"),
    [
        ("gptq", {"bits": 5}),
        ("gptq", {"bits": 3}),  # 4-bit tensors read as 3-bit: the companions disagree
        ("gptq", {"checkpoint_format": "marlin"}),
        ("gptq", {"group_size": None}),
        ("awq", {"bits": 8}),
        ("awq", {"version": "gemv_fast"}),
        ("awq", {"version": "gemv"}),  # GEMM tensors read as GEMV
        ("awq", {"modules_to_not_convert": ["q_proj"]}),  # listed but packed
    ],
    ids=lambda v: str(v),
)
def test_a_config_that_does_not_match_the_tensors_is_refused(
    which: str, changes: dict[str, Any], gptq: Path, awq: Path, tmp_path: Path
) -> None:
    base = gptq if which == "gptq" else awq
    with pytest.raises(InvalidBaseModel) as info:
        read_base_dir(_with_config(base, tmp_path / "edited", **changes))
    assert info.value.code == "invalid_base_model"
    assert info.value.reason == "bad_quantization"
