"""Promotion gates: the checks a version must pass before a promotion request can be approved.

Pure code (no database): the promotion service loads the version's evaluations and the
deployment's current stable version's evaluations, and calls ``evaluate_gates``. The
configuration comes from ``gates.yaml`` in the policy directory (format documented there):
``parse_gates`` is strict (unknown keys, wrong types → ``InvalidPolicy``) and
``GatesFile.for_target`` picks the configuration for a (namespace, deployment).

Gates run in a fixed order with stable names: ``validated``, ``evaluations_present``,
``required_suites``, ``thresholds``, ``no_regression``, ``regression_suites``. A failed gate's
``reason`` is a stable snake_case code; ``detail`` holds the figures (JSON-serialisable).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from registry.policy.gates_config import GateConfig, NoRegression

GATE_NAMES: tuple[str, ...] = (
    "validated",
    "evaluations_present",
    "required_suites",
    "thresholds",
    "no_regression",
    "regression_suites",
)


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True, slots=True)
class EvalPoint:
    """One recorded evaluation result of a version."""

    suite: str
    metric: str
    value: float
    higher_is_better: bool
    dataset_digest: str | None
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class GateResult:
    name: str
    passed: bool
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "reason": self.reason,
            "detail": self.detail,
        }


def gates_passed(results: Sequence[GateResult]) -> bool:
    return all(r.passed for r in results)


_Key = tuple[str, str, str | None]


def _latest(points: Sequence[EvalPoint]) -> dict[_Key, EvalPoint]:
    """Latest point per (suite, metric, dataset_digest); a later ``recorded_at`` wins."""
    out: dict[_Key, EvalPoint] = {}
    for p in points:
        key = (p.suite, p.metric, p.dataset_digest)
        if key not in out or p.recorded_at >= out[key].recorded_at:
            out[key] = p
    return out


def _regressions(
    candidate: dict[_Key, EvalPoint],
    stable: dict[_Key, EvalPoint],
    policy: NoRegression,
    suites: set[str] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """(regressions beyond tolerance, number of tuples compared), optionally limited to suites."""
    found: list[dict[str, Any]] = []
    compared = 0
    for key in sorted(candidate.keys() & stable.keys(), key=lambda k: (k[0], k[1], k[2] or "")):
        if suites is not None and key[0] not in suites:
            continue
        compared += 1
        cand, base = candidate[key], stable[key]
        delta = cand.value - base.value
        worse_by = -delta if cand.higher_is_better else delta
        tol = policy.tolerance_for(key[0], key[1])
        if worse_by > tol and not math.isclose(worse_by, tol, rel_tol=1e-9, abs_tol=1e-12):
            found.append(
                {
                    "suite": key[0],
                    "metric": key[1],
                    "dataset_digest": key[2],
                    "candidate": cand.value,
                    "stable": base.value,
                    "delta": delta,
                    "tolerance": tol,
                    "higher_is_better": cand.higher_is_better,
                }
            )
    return found, compared


def _gate(name: str, failure: str | None, detail: dict[str, Any]) -> GateResult:
    return GateResult(name, failure is None, failure, detail)


def _gate_thresholds(cfg: GateConfig, latest: dict[_Key, EvalPoint]) -> GateResult:
    failures: list[dict[str, Any]] = []
    for t in cfg.thresholds:
        # the most recent value of (suite, metric), whatever the dataset digest
        points = [p for (s, m, _), p in latest.items() if s == t.suite and m == t.metric]
        value = max(points, key=lambda p: p.recorded_at).value if points else None
        if value is None:
            problem = "missing"
        elif t.min is not None and value < t.min:
            problem = "below_min"
        elif t.max is not None and value > t.max:
            problem = "above_max"
        else:
            continue
        failures.append(
            {"suite": t.suite, "metric": t.metric, "min": t.min, "max": t.max, "value": value}
            | {"problem": problem}
        )
    detail = {"checked": len(cfg.thresholds), "failures": failures}
    return _gate("thresholds", "threshold_not_met" if failures else None, detail)


def _gate_regression_suites(
    cfg: GateConfig, latest: dict[_Key, EvalPoint], stable: dict[_Key, EvalPoint] | None
) -> GateResult:
    present = {suite for suite, _, _ in latest}
    missing = [s for s in cfg.regression_suites if s not in present]
    detail: dict[str, Any] = {"suites": list(cfg.regression_suites), "missing": missing}
    if missing:
        return _gate("regression_suites", "missing_suites", detail)
    if not cfg.regression_suites:
        return _gate("regression_suites", None, detail)
    if stable is None:
        return GateResult("regression_suites", True, "no_stable_version", detail)
    suites = set(cfg.regression_suites)
    found, detail["compared"] = _regressions(latest, stable, cfg.no_regression, suites)
    detail["regressions"] = found
    return _gate("regression_suites", "regression" if found else None, detail)


def evaluate_gates(
    cfg: GateConfig,
    *,
    version_state: str,
    candidate: Sequence[EvalPoint],
    stable: Sequence[EvalPoint] | None,
) -> list[GateResult]:
    """Run every gate, in ``GATE_NAMES`` order, for a candidate version.

    ``stable`` is the evaluations of the deployment's current stable version, ``None`` for a
    first promotion. Evaluations are compared per (suite, metric, dataset digest) only, the latest
    ``recorded_at`` of duplicates winning; a regression exactly at the tolerance passes.
    ``regression_suites`` applies its no-regression check even when ``no_regression`` is
    disabled (same tolerances).
    """
    latest = _latest(candidate)
    latest_stable = _latest(stable) if stable is not None else None
    results: list[GateResult] = []

    state = {"state": version_state}
    if not cfg.require_validated:
        results.append(GateResult("validated", True, "not_required", state))
    else:
        failure = None if version_state == "validated" else "not_validated"
        results.append(_gate("validated", failure, state))

    count = {"count": len(latest), "required": cfg.min_evaluations}
    enough = len(latest) >= cfg.min_evaluations
    results.append(_gate("evaluations_present", None if enough else "too_few_evaluations", count))

    present = {suite for suite, _, _ in latest}
    missing = [s for s in cfg.required_suites if s not in present]
    suites = {"required": list(cfg.required_suites), "missing": missing}
    results.append(_gate("required_suites", "missing_suites" if missing else None, suites))

    results.append(_gate_thresholds(cfg, latest))

    if not cfg.no_regression.enabled:
        results.append(GateResult("no_regression", True, "disabled"))
    elif latest_stable is None:
        results.append(GateResult("no_regression", True, "no_stable_version"))
    else:
        found, compared = _regressions(latest, latest_stable, cfg.no_regression)
        detail = {"compared": compared, "regressions": found}
        results.append(_gate("no_regression", "regression" if found else None, detail))

    results.append(_gate_regression_suites(cfg, latest, latest_stable))
    return results
