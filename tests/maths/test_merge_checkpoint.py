"""merge() on whole checkpoints: sharded layouts, dtypes, the other files, and every refusal
(nothing is left behind when a merge fails or is cancelled)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import peft
import pytest
import torch

from registry.errors import BadRequest, IncompatibleAdapters, NotMergeable
from registry.maths.merge import merge
from tests.maths.compare import assert_matches_peft, assert_same_logits, weight_files
from tests.maths.tiny import (
    load_base,
    peft_merged,
    peft_type_name,
    save_adapter,
    tiny_gpt2,
    tiny_llama,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
LORA = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "down_proj", "lm_head"])


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("base"), seed=2)


@pytest.fixture(scope="module")
def adapter(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_adapter(llama, LORA, tmp_path_factory.mktemp("adapter") / "lora", seed=2)


def test_sharded_base_keeps_its_layout(tmp_path: Path) -> None:
    base = tiny_llama(tmp_path, seed=2, max_shard_size="40KB")
    shards = weight_files(base)
    assert len(shards) > 2
    adapter = save_adapter(base, LORA, tmp_path / "adapter", seed=2)
    report = merge(adapter, base, tmp_path / "out")
    merged = peft_merged(base, adapter)
    assert_matches_peft(tmp_path / "out", base, merged)  # same shard names, tensor by tensor
    assert_same_logits(tmp_path / "out", merged)
    index_in = json.loads((base / "model.safetensors.index.json").read_text())
    index_out = json.loads((tmp_path / "out" / "model.safetensors.index.json").read_text())
    assert index_out["weight_map"] == index_in["weight_map"]
    assert list(index_out["weight_map"]) == list(index_in["weight_map"])
    sizes = sum(t.numel() * t.element_size() for t in merged.state_dict().values())
    assert index_out["metadata"]["total_size"] == index_in["metadata"]["total_size"] == sizes
    assert report.recipe["layout"] == "sharded"
    assert set(report.files) == {*shards, "model.safetensors.index.json"} | {
        "config.json",
        "generation_config.json",
    }


def test_bfloat16_base_within_one_ulp(tmp_path: Path) -> None:
    base = tiny_llama(tmp_path, seed=2, dtype=torch.bfloat16)
    config = peft.LoraConfig(r=4, use_dora=True, target_modules=["k_proj", "gate_proj"])
    adapter = save_adapter(base, config, tmp_path / "adapter")
    merge(adapter, base, tmp_path / "out")
    merged = peft_merged(base, adapter)
    assert next(merged.parameters()).dtype == torch.bfloat16
    assert len(assert_matches_peft(tmp_path / "out", base, merged)) == 4


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_dtype_casts_every_tensor_and_the_config(
    llama: Path, adapter: Path, tmp_path: Path, dtype: torch.dtype
) -> None:
    name = str(dtype).removeprefix("torch.")
    report = merge(adapter, llama, tmp_path / "out", dtype=name)
    assert_matches_peft(tmp_path / "out", llama, peft_merged(llama, adapter), dtype=dtype)
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["dtype"] == name
    assert report.recipe["dtype"] == name
    assert report.recipe["tensors"]["copied"] == 0
    assert next(load_base(tmp_path / "out").parameters()).dtype == dtype


def test_other_files_are_copied_but_no_other_weights(
    llama: Path, adapter: Path, tmp_path: Path
) -> None:
    base = tmp_path / "base"
    shutil.copytree(llama, base)
    (base / "tokenizer.json").write_text('{"model": {}}')
    (base / "pytorch_model.bin").write_bytes(b"stale unmerged weights")
    (base / "original").mkdir()
    report = merge(adapter, base, tmp_path / "out")
    out = tmp_path / "out"
    assert (out / "tokenizer.json").read_bytes() == (base / "tokenizer.json").read_bytes()
    assert (out / "generation_config.json").read_bytes() == (
        base / "generation_config.json"
    ).read_bytes()
    assert not (out / "pytorch_model.bin").exists()
    assert not (out / "original").exists()
    assert report.recipe["files_not_copied"] == ["original", "pytorch_model.bin"]


def test_merges_into_an_existing_empty_dir_but_refuses_a_non_empty_one(
    llama: Path, adapter: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    merge(adapter, llama, out)
    assert (out / "model.safetensors").is_file()
    with pytest.raises(FileExistsError):
        merge(adapter, llama, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_raising_progress_callback_cancels_and_leaves_nothing(
    llama: Path, adapter: Path, tmp_path: Path
) -> None:
    class Cancelled(Exception):
        pass

    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if done == 3:
            raise Cancelled

    with pytest.raises(Cancelled):
        merge(adapter, llama, tmp_path / "out", progress=progress)
    assert seen == [1, 2, 3]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "config",
    [
        peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4),
        peft.PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4),
        peft.PromptEncoderConfig(
            task_type="CAUSAL_LM", num_virtual_tokens=4, encoder_hidden_size=16
        ),
    ],
    ids=["prompt", "prefix", "p-tuning"],
)
def test_prompt_methods_are_not_mergeable(
    llama: Path, tmp_path: Path, config: peft.PeftConfig
) -> None:
    prompt = save_adapter(llama, config, tmp_path / "adapter")
    with pytest.raises(NotMergeable) as info:
        merge(prompt, llama, tmp_path / "out")
    assert info.value.code == "not_mergeable"
    assert info.value.status_code == 422
    assert info.value.context["peft_type"] == peft_type_name(config)
    assert not (tmp_path / "out").exists()


def test_lora_variant_is_not_mergeable(adapter: Path, llama: Path, tmp_path: Path) -> None:
    variant = tmp_path / "alora"
    shutil.copytree(adapter, variant)
    config = json.loads((variant / "adapter_config.json").read_text())
    config["alora_invocation_tokens"] = [5, 6]
    (variant / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(NotMergeable) as info:
        merge(variant, llama, tmp_path / "out")
    assert info.value.context["reason"] == "lora_variant"


def test_adapter_for_another_model_is_refused(adapter: Path, tmp_path: Path) -> None:
    gpt2 = tiny_gpt2(tmp_path)
    with pytest.raises(IncompatibleAdapters) as info:
        merge(adapter, gpt2, tmp_path / "out")
    assert info.value.code == "incompatible_adapters"
    assert info.value.context["reason"] == "module_not_in_base"
    assert not (tmp_path / "out").exists()


def test_wrong_shapes_are_refused(adapter: Path, tmp_path: Path) -> None:
    other = tiny_llama(tmp_path, intermediate_size=48)
    with pytest.raises(IncompatibleAdapters) as info:
        merge(adapter, other, tmp_path / "out")
    assert info.value.context["reason"] == "shape_mismatch"
    assert "down_proj" in info.value.context["module"]


def test_unknown_dtype_is_a_bad_request(adapter: Path, llama: Path, tmp_path: Path) -> None:
    with pytest.raises(BadRequest):
        merge(adapter, llama, tmp_path / "out", dtype="int8")
