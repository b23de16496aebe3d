"""What aggregate refuses, each with its stable reason, before writing anything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from registry.errors import IncompatibleAdapters
from registry.maths.aggregate import aggregate
from registry.maths.combine import Input
from registry.maths.lora import CONFIG

from .aggregate_builders import Q, V, random_factors, write_site


def _site(tmp_path: Path, name: str, seed: int = 0, **config: Any) -> Path:
    gen = torch.Generator().manual_seed(seed)
    return write_site(tmp_path / name, random_factors(gen, {Q: 2, V: 2}), **config)


def _reason(sites: list[Input], out: Path, **kwargs: Any) -> str:
    with pytest.raises(IncompatibleAdapters) as caught:
        aggregate(sites, out, **kwargs)
    assert not out.exists()
    reason: str = caught.value.context["reason"]
    return reason


@pytest.mark.parametrize(
    ("weights", "kwargs", "reason"),
    [
        ((0, 0), {}, "no_samples"),
        ((3, -1), {}, "negative_weight"),
        ((3, float("nan")), {}, "invalid_weight"),
        ((1, 1), {"method": "mean"}, "unknown_method"),
        ((1, 1), {"robust": "krum"}, "unknown_robust_rule"),
        ((1, 1), {"method": "fedavg", "robust": "clip"}, "robust_needs_stack"),
        ((1, 1), {"max_rank": 0}, "invalid_max_rank"),
        ((1, 1), {"robust": "trimmed_mean", "trim": 0.5}, "invalid_trim"),
    ],
)
def test_parameters_and_weights_are_checked(
    weights: tuple[float, float], kwargs: dict[str, Any], reason: str, tmp_path: Path
) -> None:
    sites = [Input(_site(tmp_path, "a", 0), weights[0]), Input(_site(tmp_path, "b", 1), weights[1])]
    assert _reason(sites, tmp_path / "out", **kwargs) == reason


def test_no_sites_is_refused(tmp_path: Path) -> None:
    assert _reason([], tmp_path / "out") == "no_inputs"


def test_different_bases_dora_and_other_peft_types_are_refused(tmp_path: Path) -> None:
    a = Input(_site(tmp_path, "a"), 1)
    other = Input(_site(tmp_path, "other", base="another-base"), 1)
    dora = Input(_site(tmp_path, "dora", use_dora=True), 1)
    assert _reason([a, other], tmp_path / "o1") == "different_bases"
    assert _reason([a, dora], tmp_path / "o2") == "dora_not_combinable"
    ia3 = _site(tmp_path, "ia3")
    (ia3 / CONFIG).write_text(json.dumps({"peft_type": "IA3", "target_modules": ["q_proj"]}))
    assert _reason([a, Input(ia3, 1)], tmp_path / "o3") == "not_lora"


def test_fedavg_needs_equal_ranks(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(4)
    two = write_site(tmp_path / "two", random_factors(gen, {Q: 2}))
    three = write_site(tmp_path / "three", random_factors(gen, {Q: 3}))
    sites = [Input(two, 1), Input(three, 1)]
    assert _reason(sites, tmp_path / "out", method="fedavg") == "unequal_ranks"
    aggregate(sites, tmp_path / "stacked")  # stacking takes them
    assert (tmp_path / "stacked" / CONFIG).is_file()


def test_modules_of_different_shapes_are_refused(tmp_path: Path) -> None:
    a = _site(tmp_path, "a")
    wide = write_site(tmp_path / "wide", {Q: (torch.ones(2, 11), torch.ones(12, 2))})
    assert _reason([Input(a, 1), Input(wide, 1)], tmp_path / "out") == "shape_mismatch"


def test_an_existing_output_is_not_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep").write_text("x")
    with pytest.raises(IncompatibleAdapters) as caught:
        aggregate([Input(_site(tmp_path, "a"), 1)], out)
    assert caught.value.context["reason"] == "output_exists"
    assert [p.name for p in out.iterdir()] == ["keep"]
