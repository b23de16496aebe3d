"""Robust rules: one attacker among eleven sites sending -30x its delta, the coordinate-wise
rules against direct computations, and the recipe's account of what was clipped or trimmed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from registry.errors import IncompatibleAdapters
from registry.maths.aggregate import aggregate
from registry.maths.combine import Input
from registry.maths.robust import trim_count, trimmed_mean, weighted_median

from .aggregate_builders import (
    Q,
    V,
    deltas,
    overall_rel,
    random_factors,
    rel,
    weighted_mean,
    write_site,
)


@pytest.fixture
def attacked(tmp_path: Path) -> tuple[list[Input], list[Input]]:
    """Eleven sites of 100 samples: ten honest (a common delta plus small noise in both
    factors, each its own A), one attacker whose B is -30x an honest-looking B. Returns
    (all sites, honest sites)."""
    gen = torch.Generator().manual_seed(5)
    common = random_factors(gen, {Q: 4, V: 4})
    sites = []
    for k in range(11):
        noise = random_factors(gen, {Q: 4, V: 4}, scale=0.1)
        factors = {n: (a + noise[n][0], b + noise[n][1]) for n, (a, b) in common.items()}
        if k == 7:
            factors = {n: (a, -30 * b) for n, (a, b) in factors.items()}
        sites.append(Input(write_site(tmp_path / f"s{k}", factors), 100, f"site{k}"))
    return sites, [s for s in sites if s.ref != "site7"]


def test_plain_averaging_is_dragged_away_by_the_attacker(
    attacked: tuple[list[Input], list[Input]], tmp_path: Path
) -> None:
    sites, honest = attacked
    aggregate(sites, tmp_path / "out")
    assert overall_rel(deltas(tmp_path / "out"), weighted_mean(honest)) > 1.0


@pytest.mark.parametrize("rule", ["clip", "trimmed_mean", "median"])
def test_robust_rules_stay_near_the_honest_mean(
    rule: str, attacked: tuple[list[Input], list[Input]], tmp_path: Path
) -> None:
    sites, honest = attacked
    report = aggregate(sites, tmp_path / "out", robust=rule)
    assert overall_rel(deltas(tmp_path / "out"), weighted_mean(honest)) < 0.25
    assert report.recipe["parameters"]["robust"] == rule


def test_clip_records_the_clipped_sites_and_stays_exact(
    attacked: tuple[list[Input], list[Input]], tmp_path: Path
) -> None:
    sites, _ = attacked
    report = aggregate(sites, tmp_path / "out", robust="clip")
    clipped = {
        i["ref"]: c for i, c in zip(report.recipe["inputs"], report.recipe["clipped"], strict=True)
    }
    assert clipped["site7"]["modules"] == 2
    assert clipped["site7"]["min_factor"] < 0.1
    honest = [c for ref, c in clipped.items() if ref != "site7"]
    assert all(c["min_factor"] > 0.5 for c in honest)
    # the median norm clips every site above it: in eleven sites, five per module
    assert sum(c["modules"] for c in clipped.values()) == 10
    assert report.recipe["exact"] is True
    assert report.recipe["error"] == 0.0


def test_trimmed_mean_records_what_it_trimmed(
    attacked: tuple[list[Input], list[Input]], tmp_path: Path
) -> None:
    sites, _ = attacked
    report = aggregate(sites, tmp_path / "out", robust="trimmed_mean")
    trimmed = {
        i["ref"]: t for i, t in zip(report.recipe["inputs"], report.recipe["trimmed"], strict=True)
    }
    assert trimmed["site7"]["fraction"] > 0.9
    assert all(t["fraction"] < 0.5 for ref, t in trimmed.items() if ref != "site7")
    # one value dropped each side of every coordinate: 2 per coordinate over the sites
    coordinates = 12 * 10 + 8 * 10
    assert sum(t["coordinates"] for t in trimmed.values()) == 2 * coordinates
    assert report.recipe["parameters"]["trim"] == 0.1


def test_median_refactored_to_max_rank_reports_its_truncation(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(6)
    sites = [
        Input(write_site(tmp_path / f"s{k}", random_factors(gen, {Q: 3, V: 2})), 10, f"s{k}")
        for k in range(5)
    ]
    report = aggregate(sites, tmp_path / "out", robust="median", max_rank=2)
    stacked = {n: torch.stack([deltas(s.path)[n] for s in sites]) for n in (Q, V)}
    want = {n: d.median(dim=0).values for n, d in stacked.items()}  # odd count, equal weights
    got = deltas(tmp_path / "out")
    assert report.recipe["error"] == pytest.approx(overall_rel(got, want), rel=1e-4)
    assert report.recipe["error_max_module"] == pytest.approx(
        max(rel(got[n], want[n]) for n in want), rel=1e-4
    )
    assert report.recipe["exact"] is False
    assert report.recipe["rank"] == 2


def test_weighted_median_and_trimmed_mean_by_hand() -> None:
    values = torch.tensor([[1.0, 9.0], [2.0, 8.0], [3.0, 7.0], [100.0, -50.0]], dtype=torch.float64)
    equal = torch.ones(4, dtype=torch.float64)
    assert weighted_median(values, equal).tolist() == [2.5, 7.5]  # mean of the middle two
    heavy = torch.tensor([1.0, 1.0, 1.0, 5.0], dtype=torch.float64)
    assert weighted_median(values, heavy).tolist() == [100.0, -50.0]  # over half the weight
    mean, dropped = trimmed_mean(values, torch.tensor([1.0, 3.0, 1.0, 1.0]).double(), 1)
    assert mean.tolist() == pytest.approx([(2 * 3 + 3) / 4, (7 + 3 * 8) / 4])
    assert dropped.tolist() == [
        2,
        0,
        0,
        2,
    ]  # site 0 is the top of one column, the bottom of the other
    assert [trim_count(n, 0.1) for n in (2, 3, 11, 25)] == [0, 1, 1, 2]


def test_extra_tensors_are_averaged_and_clip_refuses_them(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(8)
    head = "base_model.model.score.weight"
    sites = []
    for k, w in enumerate((1, 3)):
        extra = {head: torch.full((2, 10), float(k * 4))}
        path = write_site(
            tmp_path / f"s{k}", random_factors(gen, {Q: 2}), extra=extra, modules_to_save=["score"]
        )
        sites.append(Input(path, w))
    aggregate(sites, tmp_path / "out")
    saved = load_file(str(tmp_path / "out" / "adapter_model.safetensors"))
    assert torch.equal(saved[head], torch.full((2, 10), 3.0))  # (0·1 + 4·3) / 4
    with pytest.raises(IncompatibleAdapters) as caught:
        aggregate(sites, tmp_path / "clipped", robust="clip")
    assert caught.value.context["reason"] == "clip_extra_tensors"
