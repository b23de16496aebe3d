"""Rollout plans: ``rollout.yaml`` parsed strictly into typed plans.

A plan is a list of steps (the candidate's share and a minimum dwell time), analysis rules
judged on the serving reports of the current step, a failure limit and what an inconclusive
analysis does once the dwell is over. ``parse_plans`` refuses unknown keys, wrong types and bad
shares (``InvalidPolicy`` listing every problem); ``PlansFile.plan`` picks a plan by name
(``UnknownPlan`` for a name the file does not define). The format is documented at the top of
``registry/policies/rollout.yaml``, which is also the plans of a policy set that carries none
(read at run time: ``registry.policy.loader.default_rollout_text``).

``Plan.to_dict`` / ``plan_from_mapping`` round-trip one plan (for a plan given per request, and
for storing the plan a promotion request and its rollout carry, so that a later policy change
does not alter it); ``plan_digest`` names that content (what an approval binds).

Two strictness levels. New input (``policies check|apply``, a request's ``plan_spec``) is
strict: a ``compare: stable`` rule's ``min_stable_requests`` may not be below its
``min_requests`` (a baseline thinner than the candidate's evidence lets one failed stable
request excuse any candidate), and every plan of a file meets the file's ``floor``
(``registry.canary.floor``). Content stored before those rules existed (``stored=True``: an
applied policy set, a request's or a rollout's plan) still loads: a thin baseline is raised to
``min_requests``, and a plan below the floor is refused when a promotion is requested or
approved instead of when the set loads.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any, Literal

import yaml

from registry.canary import _checks as c
from registry.canary.experiment_plan import ExperimentPlan, Mode, parse_experiment
from registry.canary.floor import DEFAULT_FLOOR, Floor, floor_failures, parse_floor
from registry.canary.hashing import MAX_SHARE_BP
from registry.errors import InvalidPolicy

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
    mode: Mode = "rollout"
    experiment: ExperimentPlan | None = None

    def to_dict(self) -> dict[str, Any]:
        """The plan in the YAML file's shape (shares back in percent; ``mode`` and
        ``experiment`` only when set, so a plain plan's digest is what it always was)."""
        doc: dict[str, Any] = {
            "steps": [
                {"share": s.share_bp / 100, "min_dwell_s": s.min_dwell_s} for s in self.steps
            ],
            "analysis": [r.to_dict() for r in self.rules],
            "failure_limit": self.failure_limit,
            "on_inconclusive": self.on_inconclusive,
        }
        if self.mode != "rollout":
            doc["mode"] = self.mode
        if self.experiment is not None:
            doc["experiment"] = self.experiment.to_dict()
        return doc


_DIGEST_VERSION = "adapter-registry-plan-v1"


def plan_digest(plan: Plan) -> str:
    """``sha256:<hex>`` of the plan's name and content (canonical JSON, versioned): what an
    approver is shown and what an approval binds."""
    canonical = json.dumps(
        [_DIGEST_VERSION, plan.name, plan.to_dict()],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return "sha256:" + sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class PlansFile:
    default_plan: str
    plans: Mapping[str, Plan]
    floor: Floor = field(default=DEFAULT_FLOOR)

    def plan(self, name: str | None = None) -> Plan:
        """The plan called ``name``, the default plan for ``None``; ``UnknownPlan`` otherwise."""
        key = self.default_plan if name is None else name
        found = self.plans.get(key)
        if found is None:
            raise UnknownPlan(key, tuple(sorted(self.plans)))
        return found


# --------------------------------------------------------------------------- parsing

_Errors = c.Errors
_TOP_KEYS = frozenset({"default_plan", "plans", "floor"})
_PLAN_KEYS = frozenset(
    {"steps", "analysis", "failure_limit", "on_inconclusive", "mode", "experiment"}
)
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
    raw = c.mapping(value, where, _STEP_KEYS, errs)
    share_bp, min_dwell = 0, 0.0
    if isinstance(value, dict):
        errs.extend(f"{where}: missing {key}" for key in sorted(_STEP_KEYS - raw.keys()))
    if "share" in raw:
        pct = c.number(raw["share"], f"{where}.share", errs)
        share_bp = round(pct * 100)
        if not 0 < pct <= 100:
            errs.append(f"{where}.share: must be > 0 and <= 100 (percent)")
        elif not math.isclose(pct * 100, share_bp, abs_tol=1e-6):
            errs.append(f"{where}.share: resolution is 0.01 % (one basis point)")
    if "min_dwell_s" in raw:
        min_dwell = c.number(raw["min_dwell_s"], f"{where}.min_dwell_s", errs)
    return Step(share_bp=share_bp, min_dwell_s=min_dwell)


def _rule(value: object, where: str, errs: _Errors, *, stored: bool) -> Rule:
    raw = c.mapping(value, where, _RULE_KEYS, errs)
    metric = _metric(c.required(raw, "metric", where, errs), f"{where}.metric", errs)
    compare = c.choice(
        c.required(raw, "compare", where, errs), f"{where}.compare", ("stable", "absolute"), errs
    )
    hib_default = metric.startswith(SCORE_PREFIX)
    hib = raw.get("higher_is_better", hib_default)
    if not isinstance(hib, bool):
        errs.append(f"{where}.higher_is_better: must be true or false")
        hib = hib_default
    min_req = c.integer(
        c.required(raw, "min_requests", where, errs), f"{where}.min_requests", errs, minimum=1
    )
    min_stable = min_req
    if "min_stable_requests" in raw:
        if compare != "stable":
            errs.append(f"{where}.min_stable_requests: only with compare: stable")
        min_stable = c.integer(
            raw["min_stable_requests"], f"{where}.min_stable_requests", errs, minimum=1
        )
        if min_stable < min_req:
            # A baseline thinner than the candidate's evidence: one failed stable request
            # would excuse a candidate failing every request. Stored plans are raised to it.
            if not stored:
                errs.append(f"{where}.min_stable_requests: must be >= min_requests ({min_req})")
            min_stable = min_req
    limits: dict[str, float] = {}
    for key in ("max_ratio", "min_ratio", "max_delta", "max", "min"):
        if key not in raw:
            continue
        if key not in _COMPARE_KEYS[compare]:
            errs.append(f"{where}.{key}: not allowed with compare: {compare}")
            continue
        limits[key] = c.number(raw[key], f"{where}.{key}", errs, positive=key.endswith("ratio"))
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


def _plan(name: str, value: object, where: str, errs: _Errors, *, stored: bool) -> Plan:
    raw = c.mapping(value, where, _PLAN_KEYS, errs)
    steps_raw = c.listing(c.required(raw, "steps", where, errs) or [], f"{where}.steps", errs)
    steps = tuple(_step(s, f"{where}.steps[{i}]", errs) for i, s in enumerate(steps_raw))
    if not steps and "steps" in raw:
        errs.append(f"{where}.steps: needs at least one step")
    for i in range(1, len(steps)):
        if steps[i].share_bp <= steps[i - 1].share_bp:
            errs.append(f"{where}.steps[{i}].share: shares must be strictly increasing")
    mode_raw = c.choice(
        raw.get("mode", "rollout"), f"{where}.mode", ("rollout", "experiment"), errs
    )
    mode: Mode = "experiment" if mode_raw == "experiment" else "rollout"
    if mode == "experiment":
        if len(steps) != 1 or steps[0].share_bp >= MAX_SHARE_BP:
            errs.append(f"{where}.steps: an experiment holds one split: one step, share < 100")
        if "experiment" not in raw:
            errs.append(f"{where}: mode: experiment needs an experiment section")
    elif steps and steps[-1].share_bp != MAX_SHARE_BP:
        errs.append(f"{where}.steps: the last step's share must be 100")
    experiment = None
    if "experiment" in raw:
        experiment = parse_experiment(raw["experiment"], f"{where}.experiment", errs, mode=mode)
    rules_raw = c.listing(raw.get("analysis", []), f"{where}.analysis", errs)
    rules = tuple(
        _rule(r, f"{where}.analysis[{i}]", errs, stored=stored) for i, r in enumerate(rules_raw)
    )
    limit = c.integer(raw.get("failure_limit", 1), f"{where}.failure_limit", errs, minimum=1)
    on_inc = c.choice(
        raw.get("on_inconclusive", "hold"), f"{where}.on_inconclusive", ("hold", "rollback"), errs
    )
    on_inconclusive: OnInconclusive = "rollback" if on_inc == "rollback" else "hold"
    if mode == "experiment" and on_inconclusive == "rollback":
        errs.append(f"{where}.on_inconclusive: an experiment ends in a person's decision: hold")
    return Plan(name, steps, rules, limit, on_inconclusive, mode, experiment)


def _invalid(what: str, errs: _Errors) -> InvalidPolicy:
    return InvalidPolicy(f"{what} is invalid", context={"errors": errs})


def plan_from_mapping(name: str, raw: object, *, stored: bool = False) -> Plan:
    """One plan from its mapping (``Plan.to_dict``'s shape: a plan given per request, or one
    stored with a request or rollout: ``stored=True``); ``InvalidPolicy`` listing every problem.
    The floor is not checked here (``floor_failures``): it belongs to the active policy set."""
    errs: _Errors = []
    if not isinstance(name, str) or not _PLAN_NAME.fullmatch(name):
        errs.append(f"plan name {name!r}: letters, digits, '_', '-', '.' (1..64 characters)")
    plan = _plan(name, raw, f"plan {name}", errs, stored=stored)
    if errs:
        raise _invalid("rollout plan", errs)
    return plan


def parse_plans(text: str, *, stored: bool = False) -> PlansFile:
    """Parse ``rollout.yaml`` (``yaml.safe_load``); raise ``InvalidPolicy`` listing every
    problem. Strict unless ``stored`` (a set applied earlier, see the module docstring): every
    plan must then also meet the file's floor (``DEFAULT_FLOOR`` when it has none)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidPolicy("rollout.yaml does not parse", context={"errors": [str(exc)]}) from exc
    errs: _Errors = []
    top = c.mapping(doc, "rollout", _TOP_KEYS, errs)
    floor = parse_floor(top["floor"], "floor", errs) if "floor" in top else DEFAULT_FLOOR
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
            before = len(errs)
            plans[name] = plan = _plan(name, raw, f"plans.{name}", errs, stored=stored)
            if not stored and len(errs) == before:
                errs.extend(
                    f"plans.{name}: below the floor: {_describe(failure)}"
                    for failure in floor_failures(plan, floor)
                )
    default = top.get("default_plan")
    if not isinstance(default, str) or not default:
        errs.append("default_plan: must be the name of a plan")
    elif (
        plans and default not in plans and isinstance(plans_raw, dict) and default not in plans_raw
    ):
        errs.append(f"default_plan: no plan named {default!r}")
    if errs:
        raise _invalid("rollout.yaml", errs)
    return PlansFile(default_plan=str(default), plans=plans, floor=floor)


def _describe(failure: Mapping[str, Any]) -> str:
    where = f" (step {failure['step']})" if "step" in failure else ""
    value = f", got {failure['value']}" if "value" in failure else ""
    return f"{failure['check']}{where}: limit {failure['limit']}{value}"
