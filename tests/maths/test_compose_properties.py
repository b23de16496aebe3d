"""compose where it differs from peft (rsLoRA, single inputs, modules_to_save), the seeded
dare methods' reproducibility and statistics, embeddings, progress and the recipe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file

from registry.maths.combine import Input
from registry.maths.compose import compose
from tests.maths._compose_models import (
    deltas,
    factors,
    lora,
    modules_of,
    products,
    save_adapters,
    tiny_llama,
    with_adapters,
    write_adapter,
)

DENSE = 1e-5  # a float32 SVD of the dense delta
EXACT_WHERE_TRUE = [
    ("cat", {}, 1e-6),
    ("linear", {}, 1e-6),
    ("svd", {}, 1e-6),
    ("svd", {"rank": 7}, 1e-6),
    ("ties", {"density": 1.0}, 1e-6),
    ("magnitude_prune", {"density": 1.0}, 1e-6),
    ("dare_linear", {"density": 1.0}, 1e-6),
    ("dare_ties", {"density": 1.0}, 1e-6),
    ("ties_svd", {"density": 1.0}, DENSE),
    ("dare_linear_svd", {"density": 1.0}, DENSE),
    ("magnitude_prune_svd", {"density": 1.0}, DENSE),
]


def assert_close(
    ours: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], rel: float
) -> None:
    assert sorted(ours) == sorted(expected)
    for name, delta in expected.items():
        assert (ours[name] - delta).abs().max() <= rel * delta.abs().max(), name


@pytest.fixture(scope="module")
def rslora(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    root = tmp_path_factory.mktemp("rslora")
    model = with_adapters(tiny_llama(), {"rs": lora(4, 8, use_rslora=True)})
    return save_adapters(model, root)["rs"], model


@pytest.mark.parametrize(("method", "kwargs", "rel"), EXACT_WHERE_TRUE)
def test_one_rslora_adapter_at_weight_one_is_reproduced(
    rslora: tuple[Path, Any], tmp_path: Path, method: str, kwargs: dict[str, Any], rel: float
) -> None:
    path, _ = rslora
    assert modules_of(path)["model.layers.0.self_attn.q_proj"].scaling == 4.0  # 8 / sqrt(4)
    compose([Input(path, 1.0)], tmp_path / "out", method=method, seed=5, **kwargs)
    config = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    assert config["use_rslora"] is False
    assert config["lora_alpha"] == config["r"]
    assert_close(deltas(tmp_path / "out"), deltas(path), rel)


def test_peft_scales_a_combined_rslora_adapter_by_sqrt_r(
    rslora: tuple[Path, Any], tmp_path: Path
) -> None:
    """The peft bug compose avoids: the output copies use_rslora, so its scaling is
    r / sqrt(r) = 2 instead of 1, and one adapter at weight 1 comes back doubled."""
    path, model = rslora
    model.add_weighted_adapter(["rs"], [1.0], "combined", combination_type="cat")
    model.save_pretrained(str(tmp_path), selected_adapters=["combined"])
    assert_close(deltas(tmp_path / "combined"), {n: 2 * d for n, d in deltas(path).items()}, 1e-6)


def test_dare_is_reproducible_from_its_seed(tmp_path: Path) -> None:
    inputs = [Input(write_adapter(tmp_path / f"in{i}", seed=i), 0.5) for i in range(2)]

    def run(name: str, seed: int | None) -> tuple[bytes, int]:
        report = compose(inputs, tmp_path / name, method="dare_ties", density=0.4, seed=seed)
        weights = (tmp_path / name / "adapter_model.safetensors").read_bytes()
        return weights, report.recipe["parameters"]["seed"]

    first, seed = run("one", 7)
    assert seed == 7
    assert run("again", 7)[0] == first
    assert run("other", 8)[0] != first
    fresh, picked = run("fresh", None)
    assert isinstance(picked, int)
    assert run("rerun", picked)[0] == fresh


@pytest.mark.parametrize(
    ("dare", "plain"),
    [("dare_linear", "linear"), ("dare_ties", "ties"), ("dare_linear_svd", "svd")],
)
def test_dare_at_density_one_is_its_deterministic_method(
    tmp_path: Path, dare: str, plain: str
) -> None:
    inputs = [Input(write_adapter(tmp_path / f"in{i}", seed=i), w) for i, w in enumerate((1, -2))]
    compose(inputs, tmp_path / "dare", method=dare, density=1.0, seed=3)
    compose(inputs, tmp_path / "plain", method=plain, density=1.0)
    if plain == "svd":  # dense and low-rank SVD: the same products
        assert_close(products(tmp_path / "dare"), products(tmp_path / "plain"), DENSE)
        return
    weights = "adapter_model.safetensors"
    assert (tmp_path / "dare" / weights).read_bytes() == (tmp_path / "plain" / weights).read_bytes()


def test_dare_keeps_about_density_and_rescales_by_its_inverse(tmp_path: Path) -> None:
    big = {"model.layers.0.self_attn.q_proj": (8, 256, 256)}
    path = write_adapter(tmp_path / "in", {"r": 8, "lora_alpha": 8}, modules=big)
    compose([Input(path, 1.0)], tmp_path / "out", method="dare_linear", density=0.3, seed=11)
    source = modules_of(path)["model.layers.0.self_attn.q_proj"]
    out = modules_of(tmp_path / "out")["model.layers.0.self_attn.q_proj"]
    for before, after in ((source.a, out.a), (source.b, out.b)):
        kept = after != 0
        assert 0.27 < kept.float().mean().item() < 0.33  # 2048 draws of p = 0.3
        assert torch.allclose(after[kept], before[kept] / 0.3, rtol=1e-6)


def test_magnitude_prune_keeps_the_largest_density_fraction(tmp_path: Path) -> None:
    path = write_adapter(tmp_path / "in", {"lora_alpha": 4})
    compose([Input(path, 1.0)], tmp_path / "out", method="magnitude_prune", density=0.25)
    for name, module in modules_of(tmp_path / "out").items():
        source = modules_of(path)[name]
        for before, after in ((source.a, module.a), (source.b, module.b)):
            kept = after != 0
            assert int(kept.sum()) == int(0.25 * before.numel())
            assert before.abs()[kept].min() >= before.abs()[~kept].max()


def test_one_input_keeps_its_method_where_peft_falls_back_to_linear(tmp_path: Path) -> None:
    path = write_adapter(tmp_path / "in")
    report = compose([Input(path, 1.0)], tmp_path / "out", method="svd", rank=2)
    assert {m.rank for m in modules_of(tmp_path / "out").values()} == {2}
    assert report.recipe["measured"]["truncation_error"] > 0


def test_modules_to_save_are_carried_from_the_one_input_that_saves_them(tmp_path: Path) -> None:
    configs = {"x": lora(modules_to_save=["lm_head"]), "y": lora()}
    model = with_adapters(tiny_llama(), configs)
    with torch.no_grad():
        model.base_model.model.lm_head.modules_to_save["x"].weight.add_(1.0)
    paths = save_adapters(model, tmp_path)
    inputs = [Input(paths["y"], 0.5), Input(paths["x"], 0.5)]
    report = compose(inputs, tmp_path / "out", method="linear")
    config = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    assert config["modules_to_save"] == ["lm_head"]
    key = "base_model.model.lm_head.weight"
    saved = load_file(str(tmp_path / "out" / "adapter_model.safetensors"))
    trained = model.base_model.model.lm_head.modules_to_save["x"].weight.detach()
    assert torch.equal(saved[key], trained)
    assert report.recipe["output"]["carried"] == {key: 1}


@pytest.mark.parametrize("method", ["linear", "svd", "ties_svd"])
def test_embedding_lora_matches_peft(tmp_path: Path, method: str) -> None:
    configs = {n: lora(4, 8, target_modules=["embed_tokens", "q_proj"]) for n in "xy"}
    model = with_adapters(tiny_llama(), configs)
    paths = save_adapters(model, tmp_path)
    assert modules_of(paths["x"])["model.embed_tokens"].kind == "embedding"
    inputs = [Input(paths["x"], 0.8), Input(paths["y"], 0.4)]
    compose(inputs, tmp_path / "out", method=method, density=0.5)
    model.add_weighted_adapter(["x", "y"], [0.8, 0.4], "p", combination_type=method, density=0.5)
    theirs = {n: b @ a for n, (a, b) in factors(model, "p").items()}
    assert_close(products(tmp_path / "out"), theirs, DENSE)


def test_a_raising_progress_leaves_nothing(tmp_path: Path) -> None:
    inputs = [Input(write_adapter(tmp_path / f"in{i}", seed=i), 1.0) for i in range(2)]
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        if done == 2:
            raise KeyboardInterrupt  # how a cancelled job stops

    with pytest.raises(KeyboardInterrupt):
        compose(inputs, tmp_path / "out" / "adapter", method="svd", progress=progress)
    assert seen == [(1, 2), (2, 2)]
    assert not (tmp_path / "out" / "adapter").exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_recipe_records_what_the_method_used(tmp_path: Path) -> None:
    inputs = [
        Input(write_adapter(tmp_path / f"in{i}", seed=i), 1.0, ref=f"ns/a@v{i}", digest=f"d{i}")
        for i in range(2)
    ]
    ties = compose(inputs, tmp_path / "t", method="ties", density=0.5, seed=9, rank=3)
    assert ties.recipe["parameters"] == {
        "rank": None,
        "density": 0.5,
        "seed": None,
        "majority_sign_method": "total",
    }
    assert [i["ref"] for i in ties.recipe["inputs"]] == ["ns/a@v0", "ns/a@v1"]
    svd = compose(inputs, tmp_path / "s", method="svd", density=0.5)
    assert svd.recipe["parameters"]["rank"] == 4
    assert svd.recipe["parameters"]["density"] is None
    assert svd.recipe["measured"]["truncation_error"] > 0
    assert svd.files == ["adapter_config.json", "adapter_model.safetensors"]


@pytest.mark.parametrize("method", ["linear", "cat", "svd"])
def test_peft_loads_the_output_of_rank_patterned_inputs(tmp_path: Path, method: str) -> None:
    """peft's own ``linear`` output of such inputs fails to load (size mismatch); ours loads
    and peft computes the same deltas from it."""
    configs = {n: lora(4, 8, rank_pattern={"q_proj": 2}) for n in "xy"}
    paths = save_adapters(with_adapters(tiny_llama(), configs), tmp_path)
    inputs = [Input(paths["x"], 1.0), Input(paths["y"], -0.5)]
    compose(inputs, tmp_path / "out", method=method)
    loaded: Any = PeftModel.from_pretrained(tiny_llama(), str(tmp_path / "out"))
    ours = deltas(tmp_path / "out")
    assert {m.rank for n, m in modules_of(tmp_path / "out").items() if "q_proj" in n} == {
        {"linear": 2, "cat": 4, "svd": 4}[method]
    }
    for name, module in loaded.base_model.model.named_modules():
        if name in ours:
            assert torch.allclose(module.get_delta_weight("default"), ours[name], atol=1e-7)
