"""Aggregate by stacking and FedAvg: exactness, determinism, truncation and inexactness
measured, FFA-LoRA, computed on small random factors written with save_lora."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch

from registry.maths.aggregate import aggregate
from registry.maths.combine import Input
from registry.maths.lora import CONFIG, load_lora

from .aggregate_builders import (
    Q,
    V,
    deltas,
    overall_rel,
    random_factors,
    rel,
    sha,
    weighted_mean,
    write_site,
)


@pytest.fixture
def mixed(tmp_path: Path) -> list[Input]:
    """Three sites: rank 2, rank 5 rsLoRA lacking v_proj, rank 3 with another alpha."""
    gen = torch.Generator().manual_seed(0)
    one = write_site(tmp_path / "one", random_factors(gen, {Q: 2, V: 2}))
    two = write_site(tmp_path / "two", random_factors(gen, {Q: 5}), alpha=4, rslora=True)
    three = write_site(tmp_path / "three", random_factors(gen, {Q: 3, V: 3}), alpha=16)
    return [Input(one, 10, "one"), Input(two, 30, "two"), Input(three, 5, "three")]


def test_stack_is_exact_for_mixed_ranks_rslora_and_missing_modules(
    mixed: list[Input], tmp_path: Path
) -> None:
    report = aggregate(mixed, tmp_path / "out")
    got, want = deltas(tmp_path / "out"), weighted_mean(mixed)
    assert set(got) == {Q, V}
    for name in (Q, V):
        assert rel(got[name], want[name]) < 1e-5
    config = json.loads((tmp_path / "out" / CONFIG).read_text())
    assert (config["r"], config["lora_alpha"], config["use_rslora"]) == (10, 10, False)
    assert config["rank_pattern"] == {V: 5} == config["alpha_pattern"]
    recipe = report.recipe
    assert (recipe["exact"], recipe["error"], recipe["ffa"], recipe["rank"]) == (
        True,
        0.0,
        False,
        10,
    )
    assert sorted(i["ref"] for i in recipe["inputs"]) == ["one", "three", "two"]
    assert recipe["sites"] == 3


def test_any_site_order_gives_identical_bytes_and_recipe(
    mixed: list[Input], tmp_path: Path
) -> None:
    seen = set()
    recipes = []
    for n, order in enumerate(itertools.permutations(mixed)):
        report = aggregate(list(order), tmp_path / f"out{n}")
        seen.add((sha(report.out_dir), (report.out_dir / CONFIG).read_text()))
        recipes.append(json.dumps(report.recipe, sort_keys=True))
    assert len(seen) == 1
    assert len(set(recipes)) == 1


def test_a_zero_sample_site_changes_nothing(mixed: list[Input], tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(9)
    idle = write_site(tmp_path / "idle", random_factors(gen, {Q: 7, V: 1}), alpha=99)
    without = aggregate(mixed, tmp_path / "without")
    with_idle = aggregate([*mixed, Input(idle, 0, "idle")], tmp_path / "with")
    assert sha(without.out_dir) == sha(with_idle.out_dir)
    assert (without.out_dir / CONFIG).read_bytes() == (with_idle.out_dir / CONFIG).read_bytes()
    assert "idle" in [i["ref"] for i in with_idle.recipe["inputs"]]
    assert with_idle.recipe["sites"] == 3


@pytest.mark.parametrize("method", ["stack", "fedavg"])
def test_one_site_returns_itself(method: str, tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(1)
    site = write_site(tmp_path / "s", random_factors(gen, {Q: 3, V: 3}), alpha=6, rslora=True)
    report = aggregate([Input(site, 42)], tmp_path / "out", method=method)
    got, want = load_lora(tmp_path / "out"), load_lora(site)
    for name, m in want.modules.items():
        assert torch.equal(got.modules[name].a, m.a)  # the same factors, the scaling into B
        assert torch.allclose(got.modules[name].b, m.b * m.scaling, rtol=1e-6, atol=0)
        assert got.modules[name].scaling == 1.0
    assert (report.recipe["exact"], report.recipe["ffa"], report.recipe["rank"]) == (True, True, 3)


def test_max_rank_truncation_reports_the_error_it_makes(mixed: list[Input], tmp_path: Path) -> None:
    report = aggregate(mixed, tmp_path / "out", max_rank=3)
    got, want = deltas(tmp_path / "out"), weighted_mean(mixed)
    assert all(m.rank <= 3 for m in load_lora(tmp_path / "out").modules.values())
    per_module = {n: rel(got[n], want[n]) for n in want}
    assert report.recipe["exact"] is False
    assert report.recipe["error"] == pytest.approx(overall_rel(got, want), rel=1e-4)
    assert report.recipe["error_max_module"] == pytest.approx(max(per_module.values()), rel=1e-4)
    for name, d in want.items():  # Eckart-Young: the best rank-3 error, from the dense SVD
        s = torch.linalg.svdvals(d)
        assert per_module[name] == pytest.approx(float(s[3:].norm() / s.norm()), rel=1e-4)


def test_fedavg_is_labelled_inexact_with_its_measured_error(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(2)
    sites = [
        Input(write_site(tmp_path / f"s{k}", random_factors(gen, {Q: 4, V: 4})), w, f"s{k}")
        for k, w in enumerate((3, 1, 6))
    ]
    report = aggregate(sites, tmp_path / "out", method="fedavg")
    got, want = deltas(tmp_path / "out"), weighted_mean(sites)
    assert report.recipe["exact"] is False
    assert report.recipe["ffa"] is False
    assert report.recipe["rank"] == 4
    assert report.recipe["error"] > 0.1
    assert report.recipe["error"] == pytest.approx(overall_rel(got, want), rel=1e-5)
    worst = max(rel(got[n], want[n]) for n in want)
    assert report.recipe["error_max_module"] == pytest.approx(worst, rel=1e-5)


@pytest.mark.parametrize("method", ["stack", "fedavg"])
def test_shared_lora_a_averages_b_exactly_at_the_same_rank(method: str, tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(3)
    shared = random_factors(gen, {Q: 4, V: 4})
    sites = []
    for k, (w, alpha) in enumerate(((5, 8), (2, 16), (9, 4))):
        own = random_factors(gen, {Q: 4, V: 4})
        factors = {n: (shared[n][0], own[n][1]) for n in shared}
        sites.append(Input(write_site(tmp_path / f"s{k}", factors, alpha=alpha), w))
    report = aggregate(sites, tmp_path / "out", method=method)
    got, want = deltas(tmp_path / "out"), weighted_mean(sites)
    assert all(rel(got[n], want[n]) < 1e-5 for n in want)
    assert (report.recipe["exact"], report.recipe["error"]) == (True, 0.0)
    assert (report.recipe["ffa"], report.recipe["rank"]) == (True, 4)


def test_a_raising_progress_leaves_nothing(mixed: list[Input], tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []

    def cancel(done: int, total: int) -> None:
        calls.append((done, total))
        if done == 2:
            raise KeyboardInterrupt

    out = tmp_path / "jobs" / "out"
    out.parent.mkdir()
    with pytest.raises(KeyboardInterrupt):
        aggregate(mixed, out, progress=cancel)
    assert calls == [(1, 2), (2, 2)]
    assert list(out.parent.iterdir()) == []
