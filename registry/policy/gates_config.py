"""Promotion gate configuration: ``gates.yaml`` parsed strictly into typed settings.

``parse_gates`` refuses unknown keys and wrong types (``InvalidPolicy`` listing every problem);
``GatesFile.for_target`` picks the configuration for a (namespace, deployment): the first
matching rule merged over the defaults. The format is documented at the top of
``registry/policies/gates.yaml``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from fnmatch import fnmatchcase
from typing import Any

import yaml

from registry.errors import InvalidPolicy

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
