"""Pooling the experiment statistics of serving reports: per arm the latest report of each
source, sources summed, only the metrics asked for; and the checks on the way in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from registry.deployments.models import ServingReport
from registry.deployments.report_stats import check_document, pool
from registry.errors import InvalidReport
from registry.experiments import BinaryStats, RatioStats

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def row(arm: str, minute: int, source: str, units: int, metrics: dict[str, Any]) -> ServingReport:
    doc = check_document(source, units, metrics)
    return ServingReport(
        id=uuid.uuid4(),
        arm=arm,
        window_end=T0 + timedelta(minutes=minute),
        created_at=T0 + timedelta(minutes=minute),
        stats=doc,
    )


def binary(units: int, successes: int) -> dict[str, Any]:
    return {"kind": "binary", "units": units, "successes": successes}


def test_latest_per_source_summed_over_sources() -> None:
    reports = [
        row("stable", 1, "a", 10, {"m": binary(10, 1)}),
        row("stable", 5, "a", 40, {"m": binary(40, 9)}),  # supersedes a's first
        row("stable", 3, "b", 20, {"m": binary(20, 4)}),
        row("candidate", 2, "a", 30, {"m": binary(30, 6)}),
    ]
    totals = pool(reports)
    assert totals["stable"].units == 60
    assert totals["stable"].metrics["m"] == BinaryStats(60, 13)
    assert sorted(totals["stable"].report_ids) == sorted([str(reports[1].id), str(reports[2].id)])
    assert totals["candidate"].metrics["m"] == BinaryStats(30, 6)


def test_only_the_metrics_asked_for_and_a_kind_clash_keeps_the_first_source() -> None:
    ratio = {"kind": "ratio", "units": 2, "sum_x": 3.0, "sum_x2": 5.0, "sum_m": 2.0,
             "sum_m2": 2.0, "sum_xm": 3.0}  # fmt: skip
    reports = [
        row("stable", 1, "a", 2, {"m": binary(2, 1), "n": binary(2, 2)}),
        row("stable", 1, "b", 2, {"m": ratio}),
    ]
    assert set(pool(reports, {"n"})["stable"].metrics) == {"n"}
    assert pool(reports)["stable"].metrics["m"] == BinaryStats(2, 1)
    assert isinstance(pool(reports[1:])["stable"].metrics["m"], RatioStats)


def test_no_statistics_and_rejected_documents() -> None:
    assert check_document("a", None, {}) is None
    assert pool([ServingReport(id=uuid.uuid4(), arm="stable", stats=None)])["stable"].units is None
    with pytest.raises(InvalidReport) as info:
        check_document("a", None, {"m": {"kind": "binary", "units": 1, "successes": 2}})
    assert info.value.context == {"reason": "bad_statistics", "metric": "m"}
    with pytest.raises(InvalidReport) as info:
        check_document("a", None, {"m": {"kind": "gamma", "units": 1}})
    assert info.value.context["reason"] == "bad_statistics"
