"""compose against peft's own ``add_weighted_adapter`` on tiny models: the deterministic
methods bit for bit, the svd methods by their products, the dare methods with peft drawing from
the same per-module seeds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from peft.utils import merge_utils

from registry.maths.combine import Input
from registry.maths.compose import compose
from registry.maths.prune import module_seed
from tests.maths._compose_models import (
    factors,
    lora,
    modules_of,
    products,
    save_adapters,
    tiny_gpt2,
    tiny_llama,
    visits,
    with_adapters,
)

WEIGHTS = {"x": 1.0, "y": -0.7, "z": 0.6}


@dataclass
class Peft:
    """A peft model holding adapters x (r 4), y (r 4, alpha 16, also o_proj), z (r 2), and
    each of them saved to its own directory."""

    model: Any
    paths: dict[str, Path]
    root: Path
    calls: int = 0

    def ours(self, names: list[str], method: str, **kwargs: Any) -> Path:
        out = self.root / f"ours-{self.calls}"
        self.calls += 1
        inputs = [Input(self.paths[n], WEIGHTS[n]) for n in names]
        compose(inputs, out, method=method, **kwargs)
        return out

    def theirs(self, names: list[str], method: str, **kwargs: Any) -> str:
        name = f"peft-{self.calls}"
        self.calls += 1
        weights = [WEIGHTS[n] for n in names]
        self.model.add_weighted_adapter(names, weights, name, combination_type=method, **kwargs)
        return name


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Peft:
    root = tmp_path_factory.mktemp("compose")
    configs = {
        "x": lora(4, 8),
        "y": lora(4, 16, target_modules=["q_proj", "v_proj", "o_proj"]),
        "z": lora(2, 4),
    }
    model = with_adapters(tiny_llama(), configs)
    return Peft(model, save_adapters(model, root), root)


def assert_same_products(peft: Peft, peft_name: str, ours: Path, rel: float = 1e-5) -> None:
    theirs = {n: b @ a for n, (a, b) in factors(peft.model, peft_name).items()}
    mine = products(ours)
    assert sorted(theirs) == sorted(mine)
    for name, product in theirs.items():
        scale = product.abs().max()
        assert scale > 0
        assert (mine[name] - product).abs().max() <= rel * scale, name


@pytest.mark.parametrize(
    ("method", "kwargs"),
    [
        ("linear", {}),
        ("ties", {"density": 0.5, "majority_sign_method": "total"}),
        ("ties", {"density": 0.3, "majority_sign_method": "frequency"}),
        ("magnitude_prune", {"density": 0.6}),
    ],
)
def test_mixing_methods_equal_peft_bit_for_bit(
    llama: Peft, method: str, kwargs: dict[str, Any]
) -> None:
    ours = modules_of(llama.ours(["x", "y"], method, **kwargs))
    theirs = factors(llama.model, llama.theirs(["x", "y"], method, **kwargs))
    assert sorted(ours) == sorted(theirs)
    for name, (a, b) in theirs.items():
        assert torch.equal(ours[name].a, a), name
        assert torch.equal(ours[name].b, b), name
        assert ours[name].scaling == 1.0


def test_cat_equals_peft_and_is_the_exact_weighted_sum(llama: Peft) -> None:
    ours = modules_of(llama.ours(["x", "z"], "cat"))
    theirs = factors(llama.model, llama.theirs(["x", "z"], "cat"))
    inputs = [modules_of(llama.paths["x"]), modules_of(llama.paths["z"])]
    for name, (a, b) in theirs.items():
        rank = ours[name].rank
        assert rank == 6
        assert torch.equal(ours[name].a, a[:rank])
        assert torch.equal(ours[name].b, b[:, :rank])
        expected = torch.stack(
            [WEIGHTS[n] * m[name].delta() for n, m in zip("xz", inputs, strict=True)]
        ).sum(0)
        assert torch.allclose(ours[name].delta(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("method", "names", "kwargs"),
    [
        ("svd", ["x", "y"], {}),
        ("svd", ["x", "z"], {"svd_rank": 6}),
        ("svd", ["x", "y", "z"], {"svd_rank": 3}),
        ("ties_svd", ["x", "y"], {"density": 0.5}),
        ("ties_svd", ["x", "z"], {"density": 0.4, "majority_sign_method": "frequency"}),
        ("magnitude_prune_svd", ["x", "y"], {"density": 0.7, "svd_rank": 5}),
    ],
)
def test_svd_methods_have_peft_products(
    llama: Peft, method: str, names: list[str], kwargs: dict[str, Any]
) -> None:
    args = {k: v for k, v in kwargs.items() if k != "svd_rank"}
    ours = llama.ours(names, method, rank=kwargs.get("svd_rank"), **args)
    assert_same_products(llama, llama.theirs(names, method, **kwargs), ours)


def test_svd_records_its_truncation_error_and_keeps_the_rank(llama: Peft, tmp_path: Path) -> None:
    inputs = [Input(llama.paths[n], WEIGHTS[n]) for n in "xyz"]
    report = compose(inputs, tmp_path / "out", method="svd", rank=3)
    measured = report.recipe["measured"]
    modules = modules_of(tmp_path / "out")
    sources = [modules_of(llama.paths[n]) for n in "xyz"]
    discarded = total = worst = 0.0
    for name, module in modules.items():
        assert module.rank == 3
        exact = sum(
            w * s[name].delta() for w, s in zip(WEIGHTS.values(), sources, strict=True) if name in s
        )
        assert isinstance(exact, torch.Tensor)
        cut = float((exact - module.delta()).norm() ** 2)
        full = float(exact.norm() ** 2)
        discarded, total = discarded + cut, total + full
        worst = max(worst, (cut / full) ** 0.5)
    assert measured["truncation_error"] == pytest.approx((discarded / total) ** 0.5, rel=1e-3)
    assert measured["max_module_truncation_error"] == pytest.approx(worst, rel=1e-3)
    assert 0 < measured["truncation_error"] < 1
    assert report.recipe["parameters"]["rank"] == 3


@pytest.fixture
def peft_seeded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int]]]:
    """Make peft's DARE draw, module by module, from the seeds compose uses: before the first
    draw of each module (``plan`` lists the modules and their draws, in peft's order) torch's
    global generator is seeded with ``module_seed(SEED, module)``."""
    plan: list[tuple[str, int]] = []
    original = merge_utils.random_pruning
    state = {"draws": 0, "module": -1, "left": 0}

    def reseeding(tensor: torch.Tensor, density: float, rescale: bool) -> torch.Tensor:
        if state["left"] == 0:
            state["module"] += 1
            name, state["left"] = plan[state["module"]]
            torch.manual_seed(module_seed(SEED, name))
        state["left"] -= 1
        return original(tensor, density, rescale=rescale)

    monkeypatch.setattr(merge_utils, "random_pruning", reseeding)
    yield plan
    assert state["module"] == len(plan) - 1
    assert state["left"] == 0


SEED = 1234


@pytest.mark.parametrize("method", ["dare_linear", "dare_ties"])
def test_dare_equals_peft_drawing_from_the_same_seeds(
    llama: Peft, peft_seeded: list[tuple[str, int]], method: str
) -> None:
    peft_seeded.extend((n, 2 * k) for n, k in visits(llama.model, ["x", "y"]))
    ours = modules_of(llama.ours(["x", "y"], method, density=0.5, seed=SEED))
    theirs = factors(llama.model, llama.theirs(["x", "y"], method, density=0.5))
    for name, (a, b) in theirs.items():
        assert torch.equal(ours[name].a, a), name
        assert torch.equal(ours[name].b, b), name


@pytest.mark.parametrize("method", ["dare_linear_svd", "dare_ties_svd"])
def test_dare_svd_equals_peft_drawing_from_the_same_seeds(
    llama: Peft, peft_seeded: list[tuple[str, int]], method: str
) -> None:
    peft_seeded.extend(visits(llama.model, ["x", "z"]))
    ours = llama.ours(["x", "z"], method, density=0.4, seed=SEED)
    assert_same_products(llama, llama.theirs(["x", "z"], method, density=0.4), ours)


def test_fan_in_fan_out_modules_match_peft(
    tmp_path: Path, peft_seeded: list[tuple[str, int]]
) -> None:
    configs = {
        n: lora(4, 8, target_modules=["c_attn", "c_proj"], fan_in_fan_out=True) for n in "xy"
    }
    peft = Peft(with_adapters(tiny_gpt2(), configs), {}, tmp_path)
    peft.paths = save_adapters(peft.model, tmp_path)
    assert modules_of(peft.paths["x"])["transformer.h.0.attn.c_attn"].fan_in_fan_out
    for method in ("svd", "ties_svd"):
        ours = peft.ours(["x", "y"], method, density=0.5)
        assert_same_products(peft, peft.theirs(["x", "y"], method, density=0.5), ours)
    # peft prunes the delta as get_delta_weight returns it, transposed: so do we
    peft_seeded.extend(visits(peft.model, ["x", "y"]))
    dare = peft.ours(["x", "y"], "dare_linear_svd", density=0.5, seed=SEED)
    assert_same_products(peft, peft.theirs(["x", "y"], "dare_linear_svd", density=0.5), dare)


def test_output_config_is_peft_s_where_peft_is_right(llama: Peft) -> None:
    ours = json.loads((llama.ours(["x", "y"], "linear") / "adapter_config.json").read_text())
    name = llama.theirs(["x", "y"], "linear")
    llama.model.save_pretrained(str(llama.root / "saved"), selected_adapters=[name])
    theirs = json.loads((llama.root / "saved" / name / "adapter_config.json").read_text())
    assert sorted(ours["target_modules"]) == sorted(theirs["target_modules"])
    assert sorted(ours["target_modules"]) == ["o_proj", "q_proj", "v_proj"]
    for key in ("r", "lora_alpha", "rank_pattern", "alpha_pattern", "peft_type", "use_dora"):
        assert ours[key] == theirs[key], key
    assert (ours["r"], ours["lora_alpha"], ours["use_rslora"]) == (4, 4, False)
