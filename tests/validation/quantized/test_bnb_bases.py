"""Pre-quantized bases (QLoRA): checkpoints quantized by the real bitsandbytes (through
transformers' BitsAndBytesConfig, on CPU) keep their logical shapes in the manifest, so a LoRA
validates against them as against the unquantized base; broken quant states are refused; merging
into them is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import peft
import pytest
import torch
import transformers
from safetensors.torch import load_file

from registry.errors import InvalidBaseModel, NotMergeable
from registry.maths.merge import merge
from registry.validation.manifest import read_base_dir
from tests.maths.tiny import save_adapter
from tests.validation.methods.method_builders import validate_dir
from tests.validation.quantized.make_gptq_awq import rewrite

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

MODES: dict[str, dict[str, Any]] = {
    "nf4": {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4"},
    "fp4_double": {
        "load_in_4bit": True,
        "bnb_4bit_quant_type": "fp4",
        "bnb_4bit_use_double_quant": True,
    },
    "int8": {"load_in_8bit": True},
}


def quantize(plain: Path, out: Path, **options: Any) -> Path:
    config = transformers.BitsAndBytesConfig(**options)  # type: ignore[no-untyped-call]
    model = transformers.AutoModelForCausalLM.from_pretrained(
        plain, quantization_config=config, device_map="cpu"
    )
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module", params=sorted(MODES))
def quantized(
    request: pytest.FixtureRequest, plain: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return quantize(plain, tmp_path_factory.mktemp("q") / request.param, **MODES[request.param])


def test_the_manifest_keeps_logical_shapes(quantized: Path, plain: Path) -> None:
    manifest, reference = read_base_dir(quantized), read_base_dir(plain)
    raw = load_file(quantized / "model.safetensors")
    packed = [n for n, t in raw.items() if n.endswith("q_proj.weight") and t.dtype == torch.uint8]
    assert packed or "int8" in quantized.name  # 4-bit really is packed on disk
    assert set(manifest.tensors) == set(reference.tensors)
    for name, (_, shape) in reference.tensors.items():
        assert manifest.tensors[name][1] == shape, name
    quant = manifest.quantization
    assert quant is not None
    assert quant["method"] == "bitsandbytes"
    assert quant["bits"] == (8 if "int8" in quantized.name else 4)
    assert reference.quantization is None


def test_a_lora_trained_on_the_plain_base_validates_against_the_quantized_one(
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
    assert not (tmp_path / "merged").exists()


def _nf4(plain: Path, tmp_path: Path) -> Path:
    return quantize(plain, tmp_path / "nf4", **MODES["nf4"])


def test_broken_quantized_checkpoints_are_refused(plain: Path, tmp_path: Path) -> None:
    nf4 = _nf4(plain, tmp_path)
    state = "model.layers.0.self_attn.q_proj.weight.quant_state.bitsandbytes__nf4"

    def garbage(t: dict[str, torch.Tensor]) -> None:
        t[state] = torch.tensor(list(b"not json"), dtype=torch.uint8)

    def grown(t: dict[str, torch.Tensor]) -> None:
        meta = json.loads(bytes(t[state].tolist()))
        meta["shape"] = [meta["shape"][0] * 4, meta["shape"][1]]
        t[state] = torch.tensor(list(json.dumps(meta).encode()), dtype=torch.uint8)

    def stateless(t: dict[str, torch.Tensor]) -> None:
        del t[state]

    for name, edit in (("garbage", garbage), ("grown", grown), ("stateless", stateless)):
        with pytest.raises(InvalidBaseModel) as info:
            read_base_dir(rewrite(nf4, tmp_path / name, edit))
        assert info.value.reason == "bad_quantization", name
    cfg_path = tmp_path / "noflag"
    shutil.copytree(nf4, cfg_path)
    config = json.loads((cfg_path / "config.json").read_text())
    config["quantization_config"]["load_in_4bit"] = False
    (cfg_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(InvalidBaseModel) as info:
        read_base_dir(cfg_path)
    assert info.value.reason == "bad_quantization"
