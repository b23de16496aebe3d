"""merge() of the bias-only methods: peft's BEFT against its merge_and_unload, the
registry-native BITFIT against the documented formula (base bias + delta); both refused where
the base module has no bias, and by compose/aggregate (not LoRA)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import peft
import pytest
from safetensors.numpy import load_file

from registry.errors import IncompatibleAdapters, NotMergeable
from registry.maths.aggregate import aggregate
from registry.maths.combine import Input
from registry.maths.compose import compose
from registry.maths.merge import merge
from tests.maths.compare import assert_matches_peft
from tests.maths.tiny import peft_merged, save_adapter, tiny_gpt2, tiny_llama
from tests.validation.methods.test_bitfit import bitfit_adapter

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
PREFIX = "base_model.model."


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_gpt2(tmp_path_factory.mktemp("base"), seed=5)


def test_beft_matches_peft_merge_and_unload(tmp_path: Path) -> None:
    """peft's BEFT takes nn.Linear only: a Llama with attention biases."""
    llama = tiny_llama(tmp_path / "llama", seed=5, attention_bias=True)
    config = peft.BeftConfig(target_modules=["q_proj", "v_proj"])
    adapter = save_adapter(llama, config, tmp_path / "beft")
    report = merge(adapter, llama, tmp_path / "out")
    assert (report.method, report.recipe["modules_merged"]) == ("BEFT", 4)
    changed = assert_matches_peft(tmp_path / "out", llama, peft_merged(llama, adapter))
    assert changed == {
        f"model.layers.{i}.self_attn.{m}.bias" for i in (0, 1) for m in ("q_proj", "v_proj")
    }


def test_bitfit_adds_each_delta_to_its_bias(gpt2: Path, tmp_path: Path) -> None:
    adapter = bitfit_adapter(gpt2, tmp_path / "bitfit", ("c_attn", "c_fc", "ln_1", "ln_f"))
    merge(adapter, gpt2, tmp_path / "out")
    base = load_file(gpt2 / "model.safetensors")
    deltas = load_file(adapter / "adapter_model.safetensors")
    got = load_file(tmp_path / "out" / "model.safetensors")
    assert set(got) == set(base)
    targets = {name.removeprefix(PREFIX) for name in deltas}
    assert len(targets) == 2 * 3 + 1
    for name, tensor in base.items():
        if name in targets:
            want = tensor.astype(np.float64) + deltas[PREFIX + name]
            np.testing.assert_allclose(got[name], want.astype(tensor.dtype), rtol=0, atol=1e-6)
            assert not np.array_equal(got[name], tensor), name
        else:
            assert np.array_equal(got[name], tensor), name


def test_a_base_without_biases_refuses_the_merge(tmp_path: Path) -> None:
    llama = tiny_llama(tmp_path / "llama")
    adapter = save_adapter(llama, peft.BeftConfig(target_modules=["q_proj"]), tmp_path / "a")
    with pytest.raises(NotMergeable) as info:
        merge(adapter, llama, tmp_path / "out")
    assert info.value.context["reason"] == "missing_bias"
    assert not (tmp_path / "out").exists()


def test_compose_and_aggregate_refuse_bias_only_adapters(gpt2: Path, tmp_path: Path) -> None:
    adapter = bitfit_adapter(gpt2, tmp_path / "bitfit", ("c_attn",))
    inputs = [Input(adapter, 0.5), Input(adapter, 0.5)]
    with pytest.raises(IncompatibleAdapters) as info:
        compose(inputs, tmp_path / "composed", method="linear")
    assert info.value.context["reason"] == "not_lora"
    with pytest.raises(IncompatibleAdapters) as info:
        aggregate(inputs, tmp_path / "aggregated")
    assert info.value.context["reason"] == "not_lora"
