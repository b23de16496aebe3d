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
from dataclasses import dataclass, field, fields
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


def _keys(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls))


_CONFIG_KEYS = _keys(GateConfig)
_MATCH_KEYS = frozenset({"namespace", "deployment"})
_Errors = list[str]


def _mapping(value: object, where: str, allowed: frozenset[str], errs: _Errors) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        errs.append(f"{where}: must be a mapping")
        return {}
    unknown = [k for k in value if not isinstance(k, str) or k not in allowed]
    errs.extend(f"{where}: unknown key {k!r}" for k in unknown)
    return {k: v for k, v in value.items() if k not in unknown}


def _check(ok: bool, value: Any, default: Any, where: str, expected: str, errs: _Errors) -> Any:
    if not ok:
        errs.append(f"{where}: must be {expected}")
        return default
    return value


def _int(value: object, where: str, errs: _Errors) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return int(_check(ok, value, 0, where, "an integer >= 0", errs))


def _number(value: object, where: str, errs: _Errors, *, non_negative: bool = False) -> float:
    number = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    ok = math.isfinite(number) and not (non_negative and number < 0)
    expected = "a finite number" + (" >= 0" if non_negative else "")
    return float(_check(ok, number, 0.0, where, expected, errs))


def _bool(value: object, where: str, errs: _Errors) -> bool:
    return bool(_check(isinstance(value, bool), value, False, where, "true or false", errs))


def _str(value: object, where: str, errs: _Errors) -> str:
    ok = isinstance(value, str) and bool(value)
    return str(_check(ok, value, "", where, "a non-empty string", errs))


def _list(value: object, where: str, errs: _Errors) -> list[Any]:
    return list(_check(isinstance(value, list), value, [], where, "a list", errs))


def _strings(value: object, where: str, errs: _Errors) -> tuple[str, ...]:
    return tuple(_str(v, f"{where}[{i}]", errs) for i, v in enumerate(_list(value, where, errs)))


def _threshold(value: object, where: str, errs: _Errors) -> Threshold:
    raw = _mapping(value, where, _keys(Threshold), errs)
    lo, hi = (
        None if raw.get(k) is None else _number(raw[k], f"{where}.{k}", errs)
        for k in ("min", "max")
    )
    if lo is None and hi is None:
        errs.append(f"{where}: needs min or max")
    if lo is not None and hi is not None and lo > hi:
        errs.append(f"{where}: min is greater than max")
    suite = _str(raw.get("suite"), f"{where}.suite", errs)
    return Threshold(suite, _str(raw.get("metric"), f"{where}.metric", errs), lo, hi)


def _no_regression(value: object, where: str, errs: _Errors) -> NoRegression:
    raw = _mapping(value, where, _keys(NoRegression), errs)
    tol_raw = raw.get("tolerance") or {}
    tol_raw = _check(
        isinstance(tol_raw, dict), tol_raw, {}, f"{where}.tolerance", "a mapping", errs
    )
    tolerance = {
        _str(k, f"{where}.tolerance", errs): _number(
            v, f"{where}.tolerance.{k}", errs, non_negative=True
        )
        for k, v in tol_raw.items()
    }
    default = raw.get("default_tolerance", 0.0)
    return NoRegression(
        enabled=_bool(raw.get("enabled", True), f"{where}.enabled", errs),
        default_tolerance=_number(default, f"{where}.default_tolerance", errs, non_negative=True),
        tolerance=tolerance,
    )


def _config(raw: dict[str, Any], where: str, errs: _Errors) -> GateConfig:
    thresholds = _list(raw.get("thresholds", []), f"{where}.thresholds", errs)
    return GateConfig(
        approvals=_int(raw.get("approvals", 1), f"{where}.approvals", errs),
        min_evaluations=_int(raw.get("min_evaluations", 1), f"{where}.min_evaluations", errs),
        require_validated=_bool(
            raw.get("require_validated", True), f"{where}.require_validated", errs
        ),
        required_suites=_strings(raw.get("required_suites", []), f"{where}.required_suites", errs),
        thresholds=tuple(
            _threshold(t, f"{where}.thresholds[{i}]", errs) for i, t in enumerate(thresholds)
        ),
        no_regression=_no_regression(raw.get("no_regression"), f"{where}.no_regression", errs),
        regression_suites=_strings(
            raw.get("regression_suites", []), f"{where}.regression_suites", errs
        ),
    )


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Top-level keys replace; ``no_regression`` merges key by key (when both are mappings)."""
    merged = {**base, **override}
    nr_base, nr_over = base.get("no_regression"), override.get("no_regression")
    if isinstance(nr_base, dict) and isinstance(nr_over, dict):
        merged["no_regression"] = {**nr_base, **nr_over}
    return merged


def _invalid(errs: _Errors) -> InvalidPolicy:
    return InvalidPolicy("gates.yaml is invalid", context={"errors": errs})


def parse_gates(text: str) -> GatesFile:
    """Parse ``gates.yaml`` (``yaml.safe_load``); raise ``InvalidPolicy`` listing every problem."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidPolicy("gates.yaml does not parse", context={"errors": [str(exc)]}) from exc
    errs: _Errors = []
    top = _mapping(doc, "gates", frozenset({"defaults", "rules"}), errs)
    defaults_raw = _mapping(top.get("defaults"), "defaults", _CONFIG_KEYS, errs)
    defaults = _config(defaults_raw, "defaults", errs)
    if errs:  # rules merge over the defaults: report the defaults' problems once
        raise _invalid(errs)
    rules: list[GateRule] = []
    for i, item in enumerate(_list(top.get("rules") or [], "rules", errs)):
        where = f"rules[{i}]"
        raw = _mapping(item, where, _CONFIG_KEYS | {"match"}, errs)
        match = _mapping(raw.pop("match", None), f"{where}.match", _MATCH_KEYS, errs)
        globs = {k: _str(v, f"{where}.match.{k}", errs) for k, v in match.items()}
        config = _config(_merge(defaults_raw, raw), where, errs)
        rules.append(GateRule(globs.get("namespace"), globs.get("deployment"), config))
    if errs:
        raise _invalid(errs)
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
