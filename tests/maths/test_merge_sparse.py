"""merge() of the sparse methods: SPARSE_DELTA against a dense computation of the documented
formula; SHIRA, SUPERTUNING and TRAINABLE_TOKENS against peft's merge_and_unload."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import peft
import pytest
import torch
from safetensors.numpy import load_file, save_file

from registry.errors import IncompatibleAdapters, NotMergeable
from registry.maths.merge import merge
from tests.maths.compare import assert_matches_peft, assert_same_logits
from tests.maths.sparse_builders import PREFIX, build_sparse_delta
from tests.maths.tiny import peft_merged, save_adapter, tiny_gpt2, tiny_llama

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("base"), seed=2)


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_gpt2(tmp_path_factory.mktemp("base"), seed=2)


def dense_sparse_merge(base_dir: Path, adapter_dir: Path) -> dict[str, np.ndarray]:
    """The documented formula, dense: ``weight.reshape(-1)[indices] += values`` in float64."""
    weights = load_file(base_dir / "model.safetensors")
    adapter = load_file(adapter_dir / "adapter_model.safetensors")
    out = dict(weights)
    for name, indices in adapter.items():
        if not name.endswith(".sparse_indices"):
            continue
        module = name[len(PREFIX) : -len(".sparse_indices")]
        weight = weights[module + ".weight"]
        delta = np.zeros(weight.size)
        delta[indices] = adapter[f"{PREFIX}{module}.sparse_values"]
        merged = weight.astype(np.float64) + delta.reshape(weight.shape)
        out[module + ".weight"] = merged.astype(weight.dtype)
    return out


def assert_dense_equal(out_dir: Path, expected: dict[str, np.ndarray]) -> None:
    got = load_file(out_dir / "model.safetensors")
    assert set(got) == set(expected)
    for name, want in expected.items():
        assert got[name].dtype == want.dtype, name
        np.testing.assert_allclose(got[name], want, rtol=0, atol=1e-6 * float(np.abs(want).max()))


def test_sparse_delta_matches_the_dense_formula(llama: Path, tmp_path: Path) -> None:
    modules = (
        "model.layers.0.self_attn.q_proj",
        "model.layers.1.mlp.down_proj",
        "model.embed_tokens",
        "model.norm",
    )
    adapter = build_sparse_delta(llama, tmp_path / "a", modules, seed=3, dtype="<i4")
    report = merge(adapter, llama, tmp_path / "out")
    assert (report.method, report.recipe["modules_merged"]) == ("SPARSE_DELTA", 4)
    assert report.recipe["tensors"]["rewritten"] == 4
    assert_dense_equal(tmp_path / "out", dense_sparse_merge(llama, adapter))


def test_sparse_delta_on_conv1d_uses_the_stored_layout(gpt2: Path, tmp_path: Path) -> None:
    modules = ("transformer.h.0.attn.c_attn", "transformer.h.1.mlp.c_proj")
    adapter = build_sparse_delta(gpt2, tmp_path / "a", modules, seed=4)
    merge(adapter, gpt2, tmp_path / "out")
    assert_dense_equal(tmp_path / "out", dense_sparse_merge(gpt2, adapter))


def test_indices_past_2_pow_24_stay_exact(tmp_path: Path) -> None:
    """Element 2**24 + 1 has no float32 index: a cast would move the delta to 2**24."""
    rows = (1 << 24) // 32 + 2
    base = tiny_llama(tmp_path, vocab_size=rows, tie_word_embeddings=True, dtype=torch.float16)
    indices = np.array([5, (1 << 24) + 1, (1 << 24) + 3], dtype=np.int64)
    adapter = tmp_path / "a"
    adapter.mkdir()
    save_file(
        {
            f"{PREFIX}model.embed_tokens.sparse_indices": indices,
            f"{PREFIX}model.embed_tokens.sparse_values": np.array([1, 2, 4], np.float16),
        },
        adapter / "adapter_model.safetensors",
    )
    (adapter / "adapter_config.json").write_text('{"peft_type": "SPARSE_DELTA"}')
    merge(adapter, base, tmp_path / "out")
    got = load_file(tmp_path / "out" / "model.safetensors")["model.embed_tokens.weight"]
    want = load_file(base / "model.safetensors")["model.embed_tokens.weight"]
    diff = (got.astype(np.float32) - want.astype(np.float32)).reshape(-1)
    assert sorted(np.flatnonzero(diff).tolist()) == indices.tolist()


def test_sparse_delta_index_past_the_weight_is_refused(llama: Path, tmp_path: Path) -> None:
    adapter = build_sparse_delta(llama, tmp_path / "a", ("model.layers.0.self_attn.k_proj",))
    weights = adapter / "adapter_model.safetensors"
    tensors = load_file(weights)
    name = f"{PREFIX}model.layers.0.self_attn.k_proj.sparse_indices"
    tensors[name] = tensors[name] + 16 * 32
    save_file(tensors, weights)
    with pytest.raises(IncompatibleAdapters) as info:
        merge(adapter, llama, tmp_path / "out")
    assert info.value.context["reason"] == "index_out_of_range"
    assert not (tmp_path / "out").exists()


def _merge_like_peft(base: Path, config: peft.PeftConfig, tmp_path: Path) -> set[str]:
    adapter = save_adapter(base, config, tmp_path / "adapter")
    merge(adapter, base, tmp_path / "out")
    merged = peft_merged(base, adapter)
    changed = assert_matches_peft(tmp_path / "out", base, merged)
    assert_same_logits(tmp_path / "out", merged)
    return changed


def test_shira_matches_peft(llama: Path, tmp_path: Path) -> None:
    config = peft.ShiraConfig(r=2, target_modules=["q_proj", "up_proj"], random_seed=3)
    assert len(_merge_like_peft(llama, config, tmp_path)) == 4


def test_supertuning_and_supra_match_peft(llama: Path, tmp_path: Path) -> None:
    sparse = peft.SupertuningConfig(target_modules=["v_proj"], sparsity=0.8)
    assert len(_merge_like_peft(llama, sparse, tmp_path / "super")) == 2
    supra = peft.SupertuningConfig(target_modules=["q_proj"], sparsity=0.9, r=4, lora_alpha=6)
    assert len(_merge_like_peft(llama, supra, tmp_path / "supra")) == 2


def test_supertuning_without_saved_indices_is_refused(llama: Path, tmp_path: Path) -> None:
    config = peft.SupertuningConfig(
        target_modules=["q_proj"], sparsity=0.9, save_precomputed_indices=False
    )
    adapter = save_adapter(llama, config, tmp_path / "adapter")
    with pytest.raises(NotMergeable) as info:
        merge(adapter, llama, tmp_path / "out")
    assert info.value.context["reason"] == "indices_not_saved"


def test_trainable_tokens_match_peft(llama: Path, gpt2: Path, tmp_path: Path) -> None:
    config = peft.TrainableTokensConfig(token_indices=[3, 1, 127])
    assert _merge_like_peft(llama, config, tmp_path / "llama") == {"model.embed_tokens.weight"}
    tied = peft.TrainableTokensConfig(token_indices=[5, 9])
    assert _merge_like_peft(gpt2, tied, tmp_path / "gpt2") == {"transformer.wte.weight"}
    both = peft.TrainableTokensConfig(
        token_indices=[2, 4], target_modules=["embed_tokens", "lm_head"]
    )
    changed = _merge_like_peft(llama, both, tmp_path / "both")
    assert changed == {"model.embed_tokens.weight", "lm_head.weight"}
