"""Rollout plans: ``rollout.yaml`` parsed strictly into typed plans.

A plan is a list of steps (the candidate's share and a minimum dwell time), analysis rules
judged on the serving reports of the current step, a failure limit and what an inconclusive
analysis does once the dwell is over. ``parse_plans`` refuses unknown keys, wrong types and bad
shares (``InvalidPolicy`` listing every problem); ``PlansFile.plan`` picks a plan by name
(``UnknownPlan`` for a name the file does not define). The format is documented at the top of
``policies/rollout.yaml``; ``registry.rollout.default_plans.DEFAULT_PLANS_TEXT`` is that file,
built in for a policy set that carries no rollout plans.

``Plan.to_dict`` / ``plan_from_mapping`` round-trip one plan (for a plan given per request, and
for storing the plan a rollout started with, so that a later policy change does not alter it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from registry.errors import InvalidPolicy
from registry.rollout.hashing import MAX_SHARE_BP

Compare = Literal["stable", "absolute"]
OnInconclusive = Literal["hold", "rollback"]

LOWER_IS_BETTER_METRICS: frozenset[str] = frozenset(
    {"error_rate", "latency_p50_ms", "latency_p95_ms"}
)
SCORE_PREFIX = "score:"
_PLAN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class UnknownPlan(ValueError):
    """A plan name the plans file does not define."""

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        super().__init__(f"unknown rollout plan {name!r} (known: {', '.join(known)})")
        self.name = name
        self.known = known


@dataclass(frozen=True, slots=True)
class Step:
    share_bp: int  # the candidate's share in basis points, 1..10000
    min_dwell_s: float


@dataclass(frozen=True, slots=True)
class Rule:
    """One analysis rule. ``compare="stable"``: lower is better → candidate <= stable *
    ``max_ratio`` + ``max_delta``; higher is better → candidate >= stable * ``min_ratio`` -
    ``max_delta``. ``compare="absolute"``: candidate within [``min``, ``max``]."""

    metric: str
    compare: Compare
    higher_is_better: bool
    min_requests: int
    min_stable_requests: int
    max_ratio: float | None = None
    min_ratio: float | None = None
    max_delta: float | None = None
    max: float | None = None
    min: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"metric": self.metric, "compare": self.compare}
        for key in ("max_ratio", "min_ratio", "max_delta", "max", "min"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out["min_requests"] = self.min_requests
        if self.compare == "stable" and self.min_stable_requests != self.min_requests:
            out["min_stable_requests"] = self.min_stable_requests
        out["higher_is_better"] = self.higher_is_better
        return out


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    steps: tuple[Step, ...]
    rules: tuple[Rule, ...]
    failure_limit: int = 1
    on_inconclusive: OnInconclusive = "hold"

    def to_dict(self) -> dict[str, Any]:
        """The plan in the YAML file's shape (shares back in percent)."""
        return {
            "steps": [
                {"share": s.share_bp / 100, "min_dwell_s": s.min_dwell_s} for s in self.steps
            ],
            "analysis": [r.to_dict() for r in self.rules],
            "failure_limit": self.failure_limit,
            "on_inconclusive": self.on_inconclusive,
        }


def _percent(share_bp: int) -> int | float:
    return share_bp // 100 if share_bp % 100 == 0 else share_bp / 100


@dataclass(frozen=True, slots=True)
class PlansFile:
    default_plan: str
    plans: Mapping[str, Plan]

    def plan(self, name: str | None = None) -> Plan:
        """The plan called ``name``, the default plan for ``None``; ``UnknownPlan`` otherwise."""
        key = self.default_plan if name is None else name
        found = self.plans.get(key)
        if found is None:
            raise UnknownPlan(key, tuple(sorted(self.plans)))
        return found


# --------------------------------------------------------------------------- parsing helpers

_Errors = list[str]
_TOP_KEYS = frozenset({"default_plan", "plans"})
_PLAN_KEYS = frozenset({"steps", "analysis", "failure_limit", "on_inconclusive"})
_STEP_KEYS = frozenset({"share", "min_dwell_s"})
_RULE_KEYS = frozenset(
    {
        "metric",
        "compare",
        "higher_is_better",
        "min_requests",
        "min_stable_requests",
        "max_ratio",
        "min_ratio",
        "max_delta",
        "max",
        "min",
    }
)
_COMPARE_KEYS: dict[str, frozenset[str]] = {
    "stable": frozenset({"max_ratio", "min_ratio", "max_delta"}),
    "absolute": frozenset({"max", "min"}),
}


def _mapping(value: object, where: str, allowed: frozenset[str], errs: _Errors) -> dict[str, Any]:
    if not isinstance(value, dict):
        errs.append(f"{where}: must be a mapping")
        return {}
    unknown = [k for k in value if not isinstance(k, str) or k not in allowed]
    errs.extend(f"{where}: unknown key {k!r}" for k in unknown)
    return {k: v for k, v in value.items() if k not in unknown}


def _required(raw: dict[str, Any], key: str, where: str, errs: _Errors) -> Any:
    if key not in raw:
        errs.append(f"{where}: missing {key}")
    return raw.get(key)


def _number(value: object, where: str, errs: _Errors, *, positive: bool = False) -> float:
    number = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        errs.append(f"{where}: must be a finite number {'> 0' if positive else '>= 0'}")
        return 0.0
    return number


def _int(value: object, where: str, errs: _Errors, *, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        errs.append(f"{where}: must be an integer >= {minimum}")
        return minimum
    return value


def _choice(value: object, where: str, choices: tuple[str, ...], errs: _Errors) -> str:
    if value not in choices:
        errs.append(f"{where}: must be one of {', '.join(choices)}")
        return choices[0]
    return str(value)


def _metric(value: object, where: str, errs: _Errors) -> str:
    if isinstance(value, str) and (
        value in LOWER_IS_BETTER_METRICS
        or (value.startswith(SCORE_PREFIX) and len(value) > len(SCORE_PREFIX))
    ):
        return value
    known = ", ".join(sorted(LOWER_IS_BETTER_METRICS))
    errs.append(f"{where}: must be one of {known} or score:<name>")
    return "error_rate"


def _step(value: object, where: str, errs: _Errors) -> Step:
    raw = _mapping(value, where, _STEP_KEYS, errs)
    share_bp, min_dwell = 0, 0.0
    if isinstance(value, dict):
        errs.extend(f"{where}: missing {key}" for key in sorted(_STEP_KEYS - raw.keys()))
    if "share" in raw:
        pct = _number(raw["share"], f"{where}.share", errs)
        share_bp = round(pct * 100)
        if not 0 < pct <= 100:
            errs.append(f"{where}.share: must be > 0 and <= 100 (percent)")
        elif not math.isclose(pct * 100, share_bp, abs_tol=1e-6):
            errs.append(f"{where}.share: resolution is 0.01 % (one basis point)")
    if "min_dwell_s" in raw:
        min_dwell = _number(raw["min_dwell_s"], f"{where}.min_dwell_s", errs)
    return Step(share_bp=share_bp, min_dwell_s=min_dwell)


def _rule(value: object, where: str, errs: _Errors) -> Rule:
    raw = _mapping(value, where, _RULE_KEYS, errs)
    metric = _metric(_required(raw, "metric", where, errs), f"{where}.metric", errs)
    compare = _choice(
        _required(raw, "compare", where, errs), f"{where}.compare", ("stable", "absolute"), errs
    )
    hib_default = metric.startswith(SCORE_PREFIX)
    hib = raw.get("higher_is_better", hib_default)
    if not isinstance(hib, bool):
        errs.append(f"{where}.higher_is_better: must be true or false")
        hib = hib_default
    min_req = _int(
        _required(raw, "min_requests", where, errs), f"{where}.min_requests", errs, minimum=1
    )
    min_stable = min_req
    if "min_stable_requests" in raw:
        if compare != "stable":
            errs.append(f"{where}.min_stable_requests: only with compare: stable")
        min_stable = _int(
            raw["min_stable_requests"], f"{where}.min_stable_requests", errs, minimum=1
        )
    limits: dict[str, float] = {}
    for key in ("max_ratio", "min_ratio", "max_delta", "max", "min"):
        if key not in raw:
            continue
        if key not in _COMPARE_KEYS[compare]:
            errs.append(f"{where}.{key}: not allowed with compare: {compare}")
            continue
        limits[key] = _number(raw[key], f"{where}.{key}", errs, positive=key.endswith("ratio"))
    if compare == "stable":
        wrong, right = ("max_ratio", "min_ratio") if hib else ("min_ratio", "max_ratio")
        if wrong in limits:
            better = "higher" if hib else "lower"
            errs.append(f"{where}.{wrong}: a {better}-is-better metric takes {right}")
            del limits[wrong]
        if right not in limits and "max_delta" not in limits:
            errs.append(f"{where}: compare: stable needs {right} and/or max_delta")
    else:
        if "max" not in limits and "min" not in limits:
            errs.append(f"{where}: compare: absolute needs max and/or min")
        if limits.get("min", -math.inf) > limits.get("max", math.inf):
            errs.append(f"{where}: min is greater than max")
    return Rule(
        metric=metric,
        compare="stable" if compare == "stable" else "absolute",
        higher_is_better=hib,
        min_requests=min_req,
        min_stable_requests=min_stable,
        **limits,
    )


def _list(value: object, where: str, errs: _Errors) -> list[Any]:
    if not isinstance(value, list):
        errs.append(f"{where}: must be a list")
        return []
    return value


def _plan(name: str, value: object, where: str, errs: _Errors) -> Plan:
    raw = _mapping(value, where, _PLAN_KEYS, errs)
    steps_raw = _list(_required(raw, "steps", where, errs) or [], f"{where}.steps", errs)
    steps = tuple(_step(s, f"{where}.steps[{i}]", errs) for i, s in enumerate(steps_raw))
    if not steps and "steps" in raw:
        errs.append(f"{where}.steps: needs at least one step")
    for i in range(1, len(steps)):
        if steps[i].share_bp <= steps[i - 1].share_bp:
            errs.append(f"{where}.steps[{i}].share: shares must be strictly increasing")
    if steps and steps[-1].share_bp != MAX_SHARE_BP:
        errs.append(f"{where}.steps: the last step's share must be 100")
    rules_raw = _list(raw.get("analysis", []), f"{where}.analysis", errs)
    rules = tuple(_rule(r, f"{where}.analysis[{i}]", errs) for i, r in enumerate(rules_raw))
    limit = _int(raw.get("failure_limit", 1), f"{where}.failure_limit", errs, minimum=1)
    on_inc = _choice(
        raw.get("on_inconclusive", "hold"), f"{where}.on_inconclusive", ("hold", "rollback"), errs
    )
    return Plan(name, steps, rules, limit, "rollback" if on_inc == "rollback" else "hold")


def _invalid(what: str, errs: _Errors) -> InvalidPolicy:
    return InvalidPolicy(f"{what} is invalid", context={"errors": errs})


def plan_from_mapping(name: str, raw: object) -> Plan:
    """One plan from its mapping (``Plan.to_dict``'s shape, e.g. a plan given per request);
    ``InvalidPolicy`` listing every problem."""
    errs: _Errors = []
    if not isinstance(name, str) or not _PLAN_NAME.fullmatch(name):
        errs.append(f"plan name {name!r}: letters, digits, '_', '-', '.' (1..64 characters)")
    plan = _plan(name, raw, f"plan {name}", errs)
    if errs:
        raise _invalid("rollout plan", errs)
    return plan


def parse_plans(text: str) -> PlansFile:
    """Parse ``rollout.yaml`` (``yaml.safe_load``); raise ``InvalidPolicy`` listing every
    problem."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidPolicy("rollout.yaml does not parse", context={"errors": [str(exc)]}) from exc
    errs: _Errors = []
    top = _mapping(doc, "rollout", _TOP_KEYS, errs)
    plans_raw = top.get("plans")
    plans: dict[str, Plan] = {}
    if not isinstance(plans_raw, dict) or not plans_raw:
        errs.append("plans: must be a non-empty mapping of plan name to plan")
    else:
        for name, raw in plans_raw.items():
            if not isinstance(name, str) or not _PLAN_NAME.fullmatch(name):
                errs.append(
                    f"plans: name {name!r}: letters, digits, '_', '-', '.' (1..64 characters)"
                )
                continue
            plans[name] = _plan(name, raw, f"plans.{name}", errs)
    default = top.get("default_plan")
    if not isinstance(default, str) or not default:
        errs.append("default_plan: must be the name of a plan")
    elif (
        plans and default not in plans and isinstance(plans_raw, dict) and default not in plans_raw
    ):
        errs.append(f"default_plan: no plan named {default!r}")
    if errs:
        raise _invalid("rollout.yaml", errs)
    return PlansFile(default_plan=str(default), plans=plans)
