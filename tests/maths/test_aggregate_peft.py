"""Aggregate real peft-saved adapters of a tiny Llama, and load the result back with peft: its
merged weights are the sample-weighted mean of the sites' merged weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from registry.maths.aggregate import aggregate
from registry.maths.combine import Input


def _base(path: Path) -> LlamaForCausalLM:
    return LlamaForCausalLM.from_pretrained(str(path))


def _merged(base: Path, adapter: Path) -> dict[str, torch.Tensor]:
    model = PeftModel.from_pretrained(_base(base), str(adapter)).merge_and_unload()
    return {k: v.detach().double() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def tiny_sites(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Input]]:
    root = tmp_path_factory.mktemp("peft")
    config = LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=128,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(str(root / "base"))
    specs = [  # (rank, alpha, rsLoRA, targets, samples)
        (4, 8, False, ["q_proj", "v_proj"], 120),
        (2, 4, True, ["q_proj"], 40),
        (4, 16, False, ["q_proj", "v_proj"], 0),
        (3, 3, False, ["q_proj", "v_proj"], 90),
    ]
    sites = []
    for k, (r, alpha, rslora, targets, samples) in enumerate(specs):
        torch.manual_seed(10 + k)
        lora = LoraConfig(
            r=r,
            lora_alpha=alpha,
            use_rslora=rslora,
            target_modules=targets,
            init_lora_weights=False,
        )
        model = get_peft_model(_base(root / "base"), lora)
        model.save_pretrained(str(root / f"site{k}"))
        sites.append(Input(root / f"site{k}", samples, f"site{k}"))
    return root / "base", sites


def test_peft_loads_the_stacked_aggregate_as_the_weighted_mean(
    tiny_sites: tuple[Path, list[Input]], tmp_path: Path
) -> None:
    base, sites = tiny_sites
    report = aggregate(sites, tmp_path / "out")
    got = _merged(base, tmp_path / "out")
    total = sum(s.weight for s in sites)
    merged = [(_merged(base, s.path), s.weight / total) for s in sites]
    touched = 0
    for key, value in got.items():
        want = sum(m[key] * p for m, p in merged)
        assert isinstance(want, torch.Tensor)
        assert torch.allclose(value, want, rtol=0, atol=1e-5), key
        touched += int(not torch.equal(merged[0][0][key], merged[1][0][key]))
    assert touched == 4  # q_proj and v_proj of both layers changed
    assert report.recipe["rank"] == 9  # q_proj: 4 + 2 + 3 (the zero-sample site dropped)
    assert report.recipe["exact"] is True
