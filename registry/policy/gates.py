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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

import yaml

from registry.errors import InvalidPolicy

GATE_NAMES: tuple[str, ...] = (
    "validated",
    "evaluations_present",
    "required_suites",
    "thresholds",
    "no_regression",
    "regression_suites",
)

# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class Threshold:
    suite: str
    metric: str
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True, slots=True)
class NoRegression:
    enabled: bool = True
    default_tolerance: float = 0.0
    # absolute tolerance per metric; a "suite/metric" key overrides a plain "metric" key
    tolerance: Mapping[str, float] = field(default_factory=dict)

    def tolerance_for(self, suite: str, metric: str) -> float:
        specific = self.tolerance.get(f"{suite}/{metric}")
        if specific is not None:
            return specific
        return self.tolerance.get(metric, self.default_tolerance)


@dataclass(frozen=True, slots=True)
class GateConfig:
    approvals: int = 1
    min_evaluations: int = 1
    require_validated: bool = True
    required_suites: tuple[str, ...] = ()
    thresholds: tuple[Threshold, ...] = ()
    no_regression: NoRegression = field(default_factory=NoRegression)
    regression_suites: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GateRule:
    """An override: applies when every given glob matches (``None`` = any)."""

    namespace: str | None
    deployment: str | None
    config: GateConfig

    def matches(self, namespace: str, deployment: str) -> bool:
        return (self.namespace is None or fnmatchcase(namespace, self.namespace)) and (
            self.deployment is None or fnmatchcase(deployment, self.deployment)
        )


@dataclass(frozen=True, slots=True)
class GatesFile:
    defaults: GateConfig = field(default_factory=GateConfig)
    rules: tuple[GateRule, ...] = ()

    def for_target(self, namespace: str, deployment: str) -> GateConfig:
        """The first matching rule's configuration (merged over the defaults), else the defaults."""
        for rule in self.rules:
            if rule.matches(namespace, deployment):
                return rule.config
        return self.defaults


_CONFIG_KEYS = frozenset(
    {
        "approvals",
        "min_evaluations",
        "require_validated",
        "required_suites",
        "thresholds",
        "no_regression",
        "regression_suites",
    }
)
_NO_REGRESSION_KEYS = frozenset({"enabled", "default_tolerance", "tolerance"})
_THRESHOLD_KEYS = frozenset({"suite", "metric", "min", "max"})
_MATCH_KEYS = frozenset({"namespace", "deployment"})


class _Errors:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")


def _mapping(value: object, where: str, allowed: frozenset[str], errs: _Errors) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        errs.add(where, "must be a mapping")
        return {}
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str) or key not in allowed:
            errs.add(where, f"unknown key {key!r}")
        else:
            out[key] = item
    return out


def _int(value: object, where: str, errs: _Errors) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        errs.add(where, "must be an integer >= 0")
        return 0
    return value


def _number(value: object, where: str, errs: _Errors, *, non_negative: bool = False) -> float:
    number = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    if not math.isfinite(number) or (non_negative and number < 0):
        errs.add(where, "must be a finite number" + (" >= 0" if non_negative else ""))
        return 0.0
    return number


def _bool(value: object, where: str, errs: _Errors) -> bool:
    if not isinstance(value, bool):
        errs.add(where, "must be true or false")
        return False
    return value


def _str(value: object, where: str, errs: _Errors) -> str:
    if not isinstance(value, str) or not value:
        errs.add(where, "must be a non-empty string")
        return ""
    return value


def _strings(value: object, where: str, errs: _Errors) -> tuple[str, ...]:
    if not isinstance(value, list):
        errs.add(where, "must be a list of strings")
        return ()
    return tuple(_str(v, f"{where}[{i}]", errs) for i, v in enumerate(value))


def _threshold(value: object, where: str, errs: _Errors) -> Threshold:
    raw = _mapping(value, where, _THRESHOLD_KEYS, errs)
    suite = _str(raw.get("suite"), f"{where}.suite", errs)
    metric = _str(raw.get("metric"), f"{where}.metric", errs)
    lo = _number(raw["min"], f"{where}.min", errs) if raw.get("min") is not None else None
    hi = _number(raw["max"], f"{where}.max", errs) if raw.get("max") is not None else None
    if lo is None and hi is None:
        errs.add(where, "needs min or max")
    if lo is not None and hi is not None and lo > hi:
        errs.add(where, "min is greater than max")
    return Threshold(suite=suite, metric=metric, min=lo, max=hi)


def _no_regression(raw: dict[str, Any], where: str, errs: _Errors) -> NoRegression:
    tolerance_raw = raw.get("tolerance", {})
    tolerance: dict[str, float] = {}
    if not isinstance(tolerance_raw, dict):
        errs.add(f"{where}.tolerance", "must be a mapping of metric to number")
    else:
        for key, tol in tolerance_raw.items():
            name = _str(key, f"{where}.tolerance", errs)
            tolerance[name] = _number(tol, f"{where}.tolerance.{key}", errs, non_negative=True)
    return NoRegression(
        enabled=_bool(raw.get("enabled", True), f"{where}.enabled", errs),
        default_tolerance=_number(
            raw.get("default_tolerance", 0.0), f"{where}.default_tolerance", errs, non_negative=True
        ),
        tolerance=tolerance,
    )


def _config(raw: dict[str, Any], where: str, errs: _Errors) -> GateConfig:
    thresholds_raw = raw.get("thresholds", [])
    if not isinstance(thresholds_raw, list):
        errs.add(f"{where}.thresholds", "must be a list")
        thresholds_raw = []
    return GateConfig(
        approvals=_int(raw.get("approvals", 1), f"{where}.approvals", errs),
        min_evaluations=_int(raw.get("min_evaluations", 1), f"{where}.min_evaluations", errs),
        require_validated=_bool(
            raw.get("require_validated", True), f"{where}.require_validated", errs
        ),
        required_suites=_strings(raw.get("required_suites", []), f"{where}.required_suites", errs),
        thresholds=tuple(
            _threshold(t, f"{where}.thresholds[{i}]", errs) for i, t in enumerate(thresholds_raw)
        ),
        no_regression=_no_regression(
            raw.get("no_regression") or {}, f"{where}.no_regression", errs
        ),
        regression_suites=_strings(
            raw.get("regression_suites", []), f"{where}.regression_suites", errs
        ),
    )


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Top-level keys replace; ``no_regression`` merges key by key."""
    merged = {**base, **override}
    if isinstance(base.get("no_regression"), dict) and isinstance(
        override.get("no_regression"), dict
    ):
        merged["no_regression"] = {**base["no_regression"], **override["no_regression"]}
    return merged


def parse_gates(text: str) -> GatesFile:
    """Parse ``gates.yaml`` (``yaml.safe_load``); raise ``InvalidPolicy`` listing every problem."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidPolicy("gates.yaml does not parse", context={"errors": [str(exc)]}) from exc
    errs = _Errors()
    top = _mapping(doc, "gates", frozenset({"defaults", "rules"}), errs)
    defaults_raw = _mapping(top.get("defaults"), "defaults", _CONFIG_KEYS, errs)
    if defaults_raw.get("no_regression") is not None:
        defaults_raw["no_regression"] = _mapping(
            defaults_raw["no_regression"], "defaults.no_regression", _NO_REGRESSION_KEYS, errs
        )
    defaults = _config(defaults_raw, "defaults", errs)
    if errs.items:  # rules merge over the defaults: report the defaults' problems once
        raise InvalidPolicy("gates.yaml is invalid", context={"errors": errs.items})

    rules_raw = top.get("rules") or []
    rules: list[GateRule] = []
    if not isinstance(rules_raw, list):
        errs.add("rules", "must be a list")
        rules_raw = []
    for i, item in enumerate(rules_raw):
        where = f"rules[{i}]"
        raw = _mapping(item, where, _CONFIG_KEYS | {"match"}, errs)
        match = _mapping(raw.pop("match", None), f"{where}.match", _MATCH_KEYS, errs)
        if "no_regression" in raw and raw["no_regression"] is not None:
            raw["no_regression"] = _mapping(
                raw["no_regression"], f"{where}.no_regression", _NO_REGRESSION_KEYS, errs
            )
        globs = {k: _str(v, f"{where}.match.{k}", errs) for k, v in match.items()}
        rules.append(
            GateRule(
                namespace=globs.get("namespace"),
                deployment=globs.get("deployment"),
                config=_config(_merge(defaults_raw, raw), where, errs),
            )
        )
    if errs.items:
        raise InvalidPolicy("gates.yaml is invalid", context={"errors": errs.items})
    return GatesFile(defaults=defaults, rules=tuple(rules))


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


def _gate_validated(cfg: GateConfig, state: str) -> GateResult:
    if not cfg.require_validated:
        return GateResult("validated", True, "not_required", {"state": state})
    if state != "validated":
        return GateResult("validated", False, "not_validated", {"state": state})
    return GateResult("validated", True, None, {"state": state})


def _gate_thresholds(cfg: GateConfig, latest: dict[_Key, EvalPoint]) -> GateResult:
    failures: list[dict[str, Any]] = []
    for t in cfg.thresholds:
        # the most recent value of (suite, metric), whatever the dataset digest
        points = [p for (s, m, _), p in latest.items() if s == t.suite and m == t.metric]
        entry: dict[str, Any] = {"suite": t.suite, "metric": t.metric, "min": t.min, "max": t.max}
        if not points:
            failures.append({**entry, "value": None, "problem": "missing"})
            continue
        value = max(points, key=lambda p: p.recorded_at).value
        if t.min is not None and value < t.min:
            failures.append({**entry, "value": value, "problem": "below_min"})
        elif t.max is not None and value > t.max:
            failures.append({**entry, "value": value, "problem": "above_max"})
    if failures:
        return GateResult("thresholds", False, "threshold_not_met", {"failures": failures})
    return GateResult("thresholds", True, None, {"checked": len(cfg.thresholds)})


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
    """
    latest = _latest(candidate)
    latest_stable = _latest(stable) if stable is not None else None
    suites = {p.suite for p in candidate}
    results = [_gate_validated(cfg, version_state)]

    count = len(latest)
    results.append(
        GateResult(
            "evaluations_present",
            count >= cfg.min_evaluations,
            None if count >= cfg.min_evaluations else "too_few_evaluations",
            {"count": count, "required": cfg.min_evaluations},
        )
    )

    missing = [s for s in cfg.required_suites if s not in suites]
    results.append(
        GateResult(
            "required_suites",
            not missing,
            "missing_suites" if missing else None,
            {"required": list(cfg.required_suites), "missing": missing},
        )
    )
    results.append(_gate_thresholds(cfg, latest))

    nr = cfg.no_regression
    if not nr.enabled:
        results.append(GateResult("no_regression", True, "disabled"))
    elif latest_stable is None:
        results.append(GateResult("no_regression", True, "no_stable_version"))
    else:
        found, compared = _regressions(latest, latest_stable, nr)
        results.append(
            GateResult(
                "no_regression",
                not found,
                "regression" if found else None,
                {"compared": compared, "regressions": found},
            )
        )

    missing_rs = [s for s in cfg.regression_suites if s not in suites]
    detail: dict[str, Any] = {"suites": list(cfg.regression_suites), "missing": missing_rs}
    found_rs: list[dict[str, Any]] = []
    if latest_stable is not None and cfg.regression_suites:
        found_rs, detail["compared"] = _regressions(
            latest, latest_stable, nr, set(cfg.regression_suites)
        )
        detail["regressions"] = found_rs
    if missing_rs:
        reason: str | None = "missing_suites"
    elif found_rs:
        reason = "regression"
    else:
        reason = "no_stable_version" if latest_stable is None and cfg.regression_suites else None
    results.append(GateResult("regression_suites", not missing_rs and not found_rs, reason, detail))
    return results
