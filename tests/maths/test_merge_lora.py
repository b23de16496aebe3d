"""merge() against peft's merge_and_unload for LoRA and its forms: rsLoRA, rank/alpha patterns,
Conv1D (fan_in_fan_out), lora_bias, saved biases, modules_to_save, embeddings, DoRA, tied
lm_head."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import peft
import pytest
import torch

from registry.maths import IMPLEMENTATION
from registry.maths.merge import merge
from tests.maths.compare import assert_matches_peft, assert_same_logits
from tests.maths.tiny import header_of, peft_merged, save_adapter, tiny_gpt2, tiny_llama


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("base"))


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_gpt2(tmp_path_factory.mktemp("base"))


def _merge_and_compare(base: Path, config: peft.PeftConfig, tmp_path: Path) -> set[str]:
    adapter = save_adapter(base, config, tmp_path / "adapter")
    merge(adapter, base, tmp_path / "out")
    merged = peft_merged(base, adapter)
    changed = assert_matches_peft(tmp_path / "out", base, merged)
    assert_same_logits(tmp_path / "out", merged)
    return changed


def test_lora_merge_equals_peft_and_reports_its_recipe(llama: Path, tmp_path: Path) -> None:
    config = peft.LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"])
    adapter = save_adapter(llama, config, tmp_path / "adapter")
    calls: list[tuple[int, int]] = []
    report = merge(
        adapter,
        llama,
        tmp_path / "out",
        progress=lambda done, total: calls.append((done, total)),
        adapter_ref="ns/a@v1",
        adapter_digest="sha256:" + "a" * 64,
        base_ref="ns/base@v1",
    )
    merged = peft_merged(llama, adapter)
    changed = assert_matches_peft(tmp_path / "out", llama, merged)
    assert changed == {f"model.layers.{i}.self_attn.{p}_proj.weight" for i in (0, 1) for p in "qv"}
    assert_same_logits(tmp_path / "out", merged)
    total = len(calls)
    base_header = header_of(llama / "model.safetensors")
    assert total == len(base_header) - 1  # every base tensor, __metadata__ aside
    out_header = header_of(tmp_path / "out" / "model.safetensors")
    assert out_header["__metadata__"] == base_header["__metadata__"] == {"format": "pt"}
    assert list(out_header) == list(base_header)
    assert calls == [(i, total) for i in range(1, total + 1)]
    assert total > 4
    assert report.operation == "merge"
    assert report.method == "LORA"
    assert report.out_dir == tmp_path / "out"
    assert report.files == sorted(p.name for p in (tmp_path / "out").iterdir())
    assert {"model.safetensors", "config.json", "generation_config.json"} <= set(report.files)
    body = json.loads(json.dumps(report.to_json()))
    recipe = body["recipe"]
    assert recipe["implementation"] == IMPLEMENTATION
    assert recipe["adapter"] == {"ref": "ns/a@v1", "digest": "sha256:" + "a" * 64}
    assert recipe["base"] == {"ref": "ns/base@v1"}
    assert (recipe["peft_type"], recipe["dtype"], recipe["modules_merged"]) == ("LORA", "auto", 4)
    assert recipe["tensors"]["rewritten"] == 4
    assert recipe["tensors"]["copied"] == total - 4
    config_out = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config_out == json.loads((llama / "config.json").read_text())


def test_rslora_with_rank_and_alpha_patterns(llama: Path, tmp_path: Path) -> None:
    config = peft.LoraConfig(
        r=4,
        lora_alpha=8,
        use_rslora=True,
        target_modules=["q_proj", "k_proj", "down_proj"],
        rank_pattern={"layers.1.self_attn.q_proj": 2, "down_proj": 6},
        alpha_pattern={"k_proj": 3},
    )
    changed = _merge_and_compare(llama, config, tmp_path)
    assert len(changed) == 6


def test_embedding_lora_and_modules_to_save(llama: Path, tmp_path: Path) -> None:
    config = peft.LoraConfig(
        r=4, target_modules=["embed_tokens", "o_proj"], modules_to_save=["lm_head"]
    )
    changed = _merge_and_compare(llama, config, tmp_path)
    assert {"model.embed_tokens.weight", "lm_head.weight"} <= changed


@pytest.mark.parametrize("targets", [["q_proj", "v_proj"], ["embed_tokens", "up_proj"]])
def test_dora_on_linear_and_embedding(llama: Path, tmp_path: Path, targets: list[str]) -> None:
    config = peft.LoraConfig(r=4, lora_alpha=8, use_dora=True, target_modules=targets)
    assert len(_merge_and_compare(llama, config, tmp_path)) == 4 - (targets[0] == "embed_tokens")


def test_conv1d_fan_in_fan_out_with_lora_bias(gpt2: Path, tmp_path: Path) -> None:
    config = peft.LoraConfig(
        r=4, lora_alpha=8, target_modules=["c_attn", "c_proj", "c_fc"], lora_bias=True
    )
    changed = _merge_and_compare(gpt2, config, tmp_path)
    assert "transformer.h.0.attn.c_attn.bias" in changed
    assert "transformer.h.1.mlp.c_proj.weight" in changed


def test_dora_on_conv1d(gpt2: Path, tmp_path: Path) -> None:
    config = peft.LoraConfig(r=4, use_dora=True, target_modules=["c_attn", "c_fc"])
    assert len(_merge_and_compare(gpt2, config, tmp_path)) == 4


@pytest.mark.parametrize("bias", ["all", "lora_only"])
def test_saved_biases_replace_the_base(
    gpt2: Path, tmp_path: Path, bias: Literal["all", "lora_only"]
) -> None:
    config = peft.LoraConfig(r=2, target_modules=["c_attn"], bias=bias)
    changed = _merge_and_compare(gpt2, config, tmp_path)
    assert "transformer.h.1.attn.c_attn.bias" in changed
    assert ("transformer.h.0.mlp.c_fc.bias" in changed) == (bias == "all")


def test_lora_on_tied_lm_head_changes_the_shared_embedding(gpt2: Path, tmp_path: Path) -> None:
    config = peft.LoraConfig(r=4, target_modules=["c_attn", "lm_head"])
    changed = _merge_and_compare(gpt2, config, tmp_path)
    assert "transformer.wte.weight" in changed
    assert json.loads((tmp_path / "out" / "config.json").read_text())["tie_word_embeddings"]


def test_modules_to_save_on_tied_lm_head_unties_it(gpt2: Path, tmp_path: Path) -> None:
    config = peft.LoraConfig(r=4, target_modules=["c_attn"], modules_to_save=["lm_head"])
    adapter = save_adapter(gpt2, config, tmp_path / "adapter")
    report = merge(adapter, gpt2, tmp_path / "out")
    merged = peft_merged(gpt2, adapter)
    assert_same_logits(tmp_path / "out", merged)
    out_config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert out_config["tie_word_embeddings"] is False
    assert report.recipe["untied_lm_head"] is True
    assert report.recipe["tensors"]["added"] == 1
    from safetensors.torch import load_file

    tensors = load_file(tmp_path / "out" / "model.safetensors")
    assert torch.equal(tensors["lm_head.weight"], merged.lm_head.weight.detach())
    assert not torch.equal(tensors["lm_head.weight"], tensors["transformer.wte.weight"])


@pytest.mark.parametrize("block_bytes", [64, 1000])
def test_large_matrices_are_edited_by_blocks_of_rows(
    llama: Path, gpt2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_bytes: int
) -> None:
    """Matrices above ROW_BLOCK_BYTES (4 MiB) are merged a block of rows at a time; the tiny
    models here get there with a smaller block, Linear, Conv1D and embedding layouts alike."""
    from registry.maths import merge as merge_module

    monkeypatch.setattr(merge_module, "ROW_BLOCK_BYTES", block_bytes)
    blocked: list[str] = []
    real = merge_module._FileJob.edited_rows

    def spy(job: merge_module._FileJob, name: str, *args: object) -> object:
        blocked.append(name)
        return real(job, name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(merge_module._FileJob, "edited_rows", spy)
    config = peft.LoraConfig(
        r=4, lora_alpha=8, target_modules=["embed_tokens", "q_proj", "up_proj"]
    )
    changed = _merge_and_compare(llama, config, tmp_path / "llama")
    conv = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"], fan_in_fan_out=True)
    changed |= _merge_and_compare(gpt2, conv, tmp_path / "gpt2")
    assert set(blocked) == changed
    assert len(changed) == 1 + 2 * 2 + 2


@pytest.mark.parametrize("indices", [[1, 5, 9], {"embed_tokens": [2, 3]}])
def test_trainable_token_rows_become_the_saved_rows(
    llama: Path, tmp_path: Path, indices: list[int] | dict[str, list[int]]
) -> None:
    # LoRA with trainable_token_indices: the embedding rows are trained in full beside it.
    config = peft.LoraConfig(r=4, target_modules=["q_proj"], trainable_token_indices=indices)
    changed = _merge_and_compare(llama, config, tmp_path)
    assert "model.embed_tokens.weight" in changed
