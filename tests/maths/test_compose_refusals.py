"""Every input compose refuses, with its stable reason, and nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from registry.errors import IncompatibleAdapters, UnknownPeftType
from registry.maths.combine import Input
from registry.maths.compose import compose
from tests.maths._compose_models import write_adapter

Q = "model.layers.0.self_attn.q_proj"
LM_HEAD = "base_model.model.lm_head.weight"


def refused(tmp_path: Path, inputs: list[Input], method: str = "linear", **kwargs: Any) -> str:
    out = tmp_path / "out"
    with pytest.raises(IncompatibleAdapters) as caught:
        compose(inputs, out, method=method, **kwargs)
    assert caught.value.code == "incompatible_adapters"
    assert not out.exists()
    return str(caught.value.context["reason"])


def pair(tmp_path: Path, second: dict[str, Any] | None = None, **kwargs: Any) -> list[Input]:
    first = write_adapter(tmp_path / "first", seed=1)
    other = write_adapter(tmp_path / "second", second, seed=2, **kwargs)
    return [Input(first, 1.0), Input(other, 0.5)]


@pytest.mark.parametrize(
    ("method", "kwargs", "reason"),
    [
        ("average", {}, "unknown_method"),
        ("ties", {}, "density_required"),
        ("dare_linear_svd", {}, "density_required"),
        ("magnitude_prune", {"density": 0.0}, "invalid_density"),
        ("dare_ties", {"density": 1.5}, "invalid_density"),
        ("ties_svd", {"density": float("nan")}, "invalid_density"),
        (
            "ties",
            {"density": 0.5, "majority_sign_method": "median"},
            "invalid_majority_sign_method",
        ),
        ("svd", {"rank": 0}, "invalid_rank"),
    ],
)
def test_bad_parameters(tmp_path: Path, method: str, kwargs: dict[str, Any], reason: str) -> None:
    assert refused(tmp_path, pair(tmp_path), method, **kwargs) == reason


def test_no_inputs(tmp_path: Path) -> None:
    assert refused(tmp_path, [], "cat") == "no_inputs"


@pytest.mark.parametrize(
    "method", ["linear", "ties", "dare_linear", "dare_ties", "magnitude_prune"]
)
def test_unequal_ranks_where_peft_mixes_factors(tmp_path: Path, method: str) -> None:
    inputs = pair(tmp_path, {"r": 2}, modules={Q: (2, 32, 32)})
    assert refused(tmp_path, inputs, method, density=0.5) == "unequal_ranks"
    for ok in ("cat", "svd", "ties_svd"):  # they take any ranks
        compose(inputs, tmp_path / ok, method=ok, density=0.5)


@pytest.mark.parametrize(
    ("second", "reason"),
    [
        ({"base_model_name_or_path": "other/base"}, "different_bases"),
        ({"use_dora": True}, "dora_not_combinable"),
        ({"peft_type": "IA3", "feedforward_modules": []}, "not_lora"),
        ({"target_modules": ".*q_proj"}, "target_kind_mismatch"),
        ({"layers_to_transform": [0]}, "different_targets"),
        ({"exclude_modules": ["o_proj"]}, "different_targets"),
        ({"bias": "all"}, "bias_mismatch"),
        ({"lora_bias": True}, "lora_bias_not_combinable"),
    ],
)
def test_incompatible_configs(tmp_path: Path, second: dict[str, Any], reason: str) -> None:
    assert refused(tmp_path, pair(tmp_path, second), "cat") == reason


def test_two_inputs_saving_the_same_module_differently(tmp_path: Path) -> None:
    saved = {"modules_to_save": ["lm_head"]}
    first = write_adapter(tmp_path / "a", saved, extra={LM_HEAD: torch.ones(8, 4)})
    second = write_adapter(tmp_path / "b", saved, extra={LM_HEAD: torch.zeros(8, 4)})
    inputs = [Input(first, 1.0), Input(second, 1.0)]
    assert refused(tmp_path, inputs, "cat") == "modules_to_save_conflict"
    same = write_adapter(tmp_path / "c", saved, extra={LM_HEAD: torch.ones(8, 4)})
    compose([Input(first, 1.0), Input(same, 1.0)], tmp_path / "ok", method="cat")


def test_modules_that_differ_across_inputs(tmp_path: Path) -> None:
    wider = pair(tmp_path, modules={Q: (4, 48, 32)})
    assert refused(tmp_path, wider, "svd") == "shape_mismatch"
    embedding = write_adapter(tmp_path / "emb", seed=3)
    weights = embedding / "adapter_model.safetensors"
    tensors = {
        k.replace("lora_A.weight", "lora_embedding_A").replace(
            "lora_B.weight", "lora_embedding_B"
        ): v
        for k, v in load_file(str(weights)).items()
    }
    save_file(tensors, str(weights))
    mixed = [Input(write_adapter(tmp_path / "lin", seed=4), 1.0), Input(embedding, 1.0)]
    assert refused(tmp_path, mixed, "cat") == "mixed_module_kinds"


def test_a_non_empty_output_directory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep").write_text("x")
    with pytest.raises(IncompatibleAdapters) as caught:
        compose(pair(tmp_path), out, method="cat")
    assert caught.value.context["reason"] == "output_exists"
    assert [p.name for p in out.iterdir()] == ["keep"]


def test_an_input_with_target_parameters_is_refused_as_the_validator_refuses_it(
    tmp_path: Path,
) -> None:
    inputs = pair(tmp_path, {"target_parameters": ["mlp.experts.down_proj"]})
    out = tmp_path / "out"
    with pytest.raises(UnknownPeftType) as caught:
        compose(inputs, out, method="cat")
    assert (caught.value.code, caught.value.reason) == ("unknown_peft_type", "not_validated")
    assert not out.exists()
