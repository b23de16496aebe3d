"""The CLI's side of A/B experiments: the --stats file of a report, the readout as text, and
the experiment an approver is shown with a promotion's plan. (The live path — report --stats,
deployments experiment, text and JSON — runs in the README walk-through: test_readme.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer

from registry.cli.deployments_experiment import MAX_STATS_BYTES, read_stats, render_readout
from registry.cli.promotions import plan_lines
from tests.canary.test_experiment_plan import PLAN


def test_stats_file_is_read_and_checked(tmp_path: Path) -> None:
    assert read_stats(None) == {}
    good = tmp_path / "s.json"
    doc = {
        "source": "gw-1",
        "units": 3,
        "metrics": {"m": {"kind": "binary", "units": 3, "successes": 1}},
    }
    good.write_text(json.dumps(doc))
    assert read_stats(good) == doc
    for text in ("not json", json.dumps([1]), json.dumps({"units": 1, "extra": 2})):
        good.write_text(text)
        with pytest.raises(typer.BadParameter):
            read_stats(good)
    good.write_text(" " * (MAX_STATS_BYTES + 1))
    with pytest.raises(typer.BadParameter, match="larger than"):
        read_stats(good)


def test_promotion_plan_shows_the_experiment_and_its_sample_size() -> None:
    text = plan_lines({"plan": "ab", "plan_spec": PLAN})
    assert "mode:      experiment" in text
    assert "thumbs_up (binary, primary, increase, MDE 0.05 relative)" in text
    assert "latency_ms (ratio, guardrail, decrease, margin 0.1 relative)" in text
    units = int(text.split("sample size ")[1].split()[0])
    assert units > 1000
    plain = {k: v for k, v in PLAN.items() if k not in ("mode", "experiment")}
    assert "experiment" not in plan_lines({"plan": "c", "plan_spec": plain})


def test_readout_text_flags_a_sample_ratio_mismatch() -> None:
    readout: dict[str, Any] = {
        "deployment": "d",
        "revision": 3,
        "plan": "ab",
        "mode": "experiment",
        "planned_units_per_arm": 100,
        "srm": {"p_value": 1e-6, "flagged": True},
        "decision": "inconclusive",
        "reason": "srm",
        "metrics": [
            {"name": "m", "role": "primary", "control_mean": 0.3, "treatment_mean": None,
             "abs_diff": None, "rel_diff": None, "sequential": {"low": None, "high": 0.1},
             "units": {"stable": 5, "candidate": 0}, "decision": "inconclusive"}
        ],
    }  # fmt: skip
    text = render_readout(readout)
    assert "FLAGGED" in text
    assert "inconclusive (srm)" in text
    assert "[-inf, 0.1]" in text
    assert "5/0" in text
