"""``trainable_params`` is peft's own count of trainable parameters: the buffers some methods
save beside them (random projections, SVD factors, weight norms, zeros, integer indices; a table's
``Role.buffer``/``indices``) are left out, while ``tensor_count`` still counts every tensor.

Each adapter is built by peft on the tiny Llama; peft's count is taken from the model it saved
(``sum(p.numel() for p in model.parameters() if p.requires_grad)``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import peft
import pytest
from safetensors import safe_open

from tests.maths.tiny import save_adapter

from .method_builders import validate_dir

T = ["q_proj", "v_proj"]

#: Methods that save buffers: (peft config, the suffixes of the saved buffers).
WITH_BUFFERS: dict[str, tuple[Callable[[], peft.PeftConfig], tuple[str, ...]]] = {
    "vera": (lambda: peft.VeraConfig(r=4, target_modules=T), ("vera_A", "vera_B")),
    "pvera": (lambda: peft.PveraConfig(r=4, target_modules=T), ("pvera_A", "pvera_B")),
    "randlora": (
        lambda: peft.RandLoraConfig(r=8, target_modules=T),
        ("randlora_A", "randlora_B"),
    ),
    "delora": (lambda: peft.DeloraConfig(r=4, target_modules=T), ("delora_w_norm",)),
    "glora": (lambda: peft.GloraConfig(r=4, target_modules=T), (".zeros",)),
    "glora-none": (
        lambda: peft.GloraConfig(r=4, config_A_B="none", target_modules=T),
        (".zeros",),
    ),
    "tinylora": (
        lambda: peft.TinyLoraConfig(r=2, u=5, target_modules=T),
        ("tinylora_A", "tinylora_B", "tinylora_P"),
    ),
    "frod": (
        lambda: peft.FrodConfig(target_modules=["q_proj", "k_proj"], sparse_rate=0.05),
        ("frod_V", "frod_s_indices", "frod_s_size"),
    ),
    "adamss": (
        lambda: peft.AdamssConfig(r=16, num_subspaces=2, subspace_rank=1, target_modules=T),
        ("adamss_newB",),
    ),
    "shira": (lambda: peft.ShiraConfig(r=2, target_modules=T), ("shira_indices",)),
    "supertuning": (
        lambda: peft.SupertuningConfig(target_modules=T, sparsity=0.9, r=2),
        ("supertuning_indices",),
    ),
}

#: Methods whose saved tensors are all trainable parameters (a switch may turn buffers off).
WITHOUT_BUFFERS: dict[str, Callable[[], peft.PeftConfig]] = {
    "lora": lambda: peft.LoraConfig(r=2, target_modules=T),
    "dora": lambda: peft.LoraConfig(r=2, target_modules=T, use_dora=True),
    "vera-no-projection": lambda: peft.VeraConfig(r=4, target_modules=T, save_projection=False),
    "vblora": lambda: peft.VBLoRAConfig(r=4, num_vectors=16, vector_length=8, target_modules=T),
    "c3a": lambda: peft.C3AConfig(block_size=8, target_modules=T),
}


def _saved(adapter: Path, base: Path, config: peft.PeftConfig) -> tuple[int, dict[str, int]]:
    """Save the adapter; peft's count of trainable parameters, and each saved tensor's numel."""
    counted: list[int] = []

    def count(model: Any) -> None:
        counted.append(sum(p.numel() for p in model.parameters() if p.requires_grad))
        assert counted[0] == model.get_nb_trainable_parameters()[0]

    save_adapter(base, config, adapter, before_save=count)
    with safe_open(adapter / "adapter_model.safetensors", framework="np") as f:
        sizes = {name: math.prod(f.get_slice(name).get_shape()) for name in f.keys()}  # noqa: SIM118
    return counted[0], sizes


@pytest.mark.parametrize("method", sorted(WITH_BUFFERS))
def test_buffers_are_not_trainable_params(method: str, llama: Path, tmp_path: Path) -> None:
    make, suffixes = WITH_BUFFERS[method]
    trainable, sizes = _saved(tmp_path / "a", llama, make())
    buffers = {n: s for n, s in sizes.items() if any(suffix in n for suffix in suffixes)}
    assert buffers, sorted(sizes)  # the method did save buffers
    assert trainable == sum(sizes.values()) - sum(buffers.values())
    for base in (llama, None):
        report = validate_dir(tmp_path / "a", base)
        assert report.trainable_params == trainable
        assert report.tensor_count == len(sizes)


@pytest.mark.parametrize("method", sorted(WITHOUT_BUFFERS))
def test_without_buffers_every_tensor_is_trainable(
    method: str, llama: Path, tmp_path: Path
) -> None:
    trainable, sizes = _saved(tmp_path / "a", llama, WITHOUT_BUFFERS[method]())
    assert trainable == sum(sizes.values())
    for base in (llama, None):
        report = validate_dir(tmp_path / "a", base)
        assert report.trainable_params == trainable
        assert report.tensor_count == len(sizes)


def test_vblora_topk_counts_the_saved_weights_not_the_indices(llama: Path, tmp_path: Path) -> None:
    # With save_only_topk_weights peft saves, instead of the trained logits, their top-k indices
    # (integers) and softmax weights: the count is the bank and the weights that were saved.
    config = peft.VBLoRAConfig(
        r=4, num_vectors=16, vector_length=8, topk=2, save_only_topk_weights=True, target_modules=T
    )
    trainable, sizes = _saved(tmp_path / "a", llama, config)
    indices = sum(s for n, s in sizes.items() if n.endswith("_topk_indices"))
    weights = sum(s for n, s in sizes.items() if n.endswith("_topk_weights"))
    bank = sizes["base_model.vblora_vector_bank"]
    report = validate_dir(tmp_path / "a", llama)
    assert indices > 0
    assert report.trainable_params == bank + weights == sum(sizes.values()) - indices
    assert report.trainable_params < trainable  # the logits themselves are not saved
    assert report.tensor_count == len(sizes)


@pytest.mark.parametrize("stride", [1, 2])
def test_lily_counts_each_shared_a_and_b_once(stride: int, llama: Path, tmp_path: Path) -> None:
    # Lily's layers share one lily_B per target and one lily_A per block of stride_A layers;
    # peft saves every layer's (cloned) copy of them.
    config = peft.LilyConfig(r=4, num_B=2, stride_A=stride, target_modules=T)
    trainable, sizes = _saved(tmp_path / "a", llama, config)
    assert trainable < sum(sizes.values())  # the file holds copies
    for base in (llama, None):
        report = validate_dir(tmp_path / "a", base)
        assert report.trainable_params == trainable
        assert report.tensor_count == len(sizes)


def test_a_tied_output_embedding_counts_the_token_delta_once(gpt2: Path, tmp_path: Path) -> None:
    # With tied embeddings peft ties the lm_head's adapter to the input embedding's: one delta,
    # saved a second time under the lm_head's name.
    config = peft.TrainableTokensConfig(token_indices=[5, 9])
    trainable, sizes = _saved(tmp_path / "a", gpt2, config)
    head = sizes["base_model.model.lm_head.trainable_tokens_delta"]
    assert trainable == sum(sizes.values()) - head
    for base in (gpt2, None):
        report = validate_dir(tmp_path / "a", base)
        assert report.trainable_params == trainable
        assert report.tensor_count == len(sizes)
