"""merge() against peft's merge_and_unload for AdaLoRA, IA3, LoHa and LoKr."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import peft
import pytest

from registry.maths.merge import merge
from tests.maths.compare import assert_matches_peft, assert_same_logits
from tests.maths.tiny import peft_merged, peft_type_name, save_adapter, tiny_gpt2, tiny_llama

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("base"), seed=1)


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_gpt2(tmp_path_factory.mktemp("base"), seed=1)


def _merge_and_compare(
    base: Path, config: peft.PeftConfig, tmp_path: Path, before_save: object = None
) -> set[str]:
    adapter = save_adapter(base, config, tmp_path / "adapter", before_save=before_save)
    report = merge(adapter, base, tmp_path / "out")
    assert report.method == peft_type_name(config)
    merged = peft_merged(base, adapter)
    changed = assert_matches_peft(tmp_path / "out", base, merged)
    assert_same_logits(tmp_path / "out", merged)
    return changed


def test_adalora_with_ranks_cut_by_rank_pattern(llama: Path, tmp_path: Path) -> None:
    config = peft.AdaLoraConfig(
        init_r=6, target_r=3, total_step=10, lora_alpha=4, target_modules=["q_proj", "v_proj"]
    )
    kept = [True, False, True, True, False, False]

    def allocate(model: peft.PeftModel) -> None:
        # What update_and_allocate leaves after training: a kept-values mask per module.
        trained: Any = model.peft_config["default"]
        trained.rank_pattern = {
            "model.layers.0.self_attn.q_proj.lora_E": kept,
            "model.layers.1.self_attn.v_proj.lora_E": [True] + [False] * 5,
        }

    changed = _merge_and_compare(llama, config, tmp_path, before_save=allocate)
    assert len(changed) == 4


def test_adalora_without_rank_pattern(llama: Path, tmp_path: Path) -> None:
    config = peft.AdaLoraConfig(init_r=4, total_step=10, target_modules=["k_proj", "up_proj"])
    assert len(_merge_and_compare(llama, config, tmp_path)) == 4


def test_ia3_feedforward_and_attention(llama: Path, tmp_path: Path) -> None:
    config = peft.IA3Config(
        target_modules=["k_proj", "v_proj", "down_proj"], feedforward_modules=["down_proj"]
    )
    assert len(_merge_and_compare(llama, config, tmp_path)) == 6


def test_ia3_on_conv1d_scales_biases_of_non_feedforward(gpt2: Path, tmp_path: Path) -> None:
    config = peft.IA3Config(
        target_modules=["c_attn", "mlp.c_proj"], feedforward_modules=["mlp.c_proj"]
    )
    changed = _merge_and_compare(gpt2, config, tmp_path)
    assert "transformer.h.0.attn.c_attn.bias" in changed
    assert "transformer.h.0.mlp.c_proj.bias" not in changed
    assert "transformer.h.0.mlp.c_proj.weight" in changed


def test_loha_with_patterns(llama: Path, tmp_path: Path) -> None:
    config = peft.LoHaConfig(
        r=4,
        alpha=6,
        target_modules=["q_proj", "gate_proj"],
        rank_pattern={"gate_proj": 2},
        alpha_pattern={"layers.0.self_attn.q_proj": 3},
    )
    assert len(_merge_and_compare(llama, config, tmp_path)) == 4


@pytest.mark.parametrize(
    ("r", "decompose_both"),
    [(8, False), (1, True)],  # full w1 and w2; both factorised (w1_a/w1_b, w2_a/w2_b)
)
def test_lokr(llama: Path, tmp_path: Path, r: int, decompose_both: bool) -> None:
    config = peft.LoKrConfig(
        r=r, alpha=4, target_modules=["q_proj", "o_proj"], decompose_both=decompose_both
    )
    assert len(_merge_and_compare(llama, config, tmp_path)) == 4
