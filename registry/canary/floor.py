"""The floor of ``rollout.yaml``: what every rollout plan must meet, above all a plan a requester
sends with a promotion request (``plan_spec``), which nobody reviewed the way the policy file is.

A plan meets the floor when its first step is a canary (a share of at most ``max_first_share``,
below 100 %; an experiment's fixed split at most ``max_experiment_share``, default 50 %), every
step lasts at least ``min_dwell_s``, at most ``max_failure_limit`` failing
analyses in a row are tolerated, and one analysis rule caps the candidate's error rate on its own
(``metric: error_rate, compare: absolute`` with ``max`` at most ``error_rate_cap.max``, judged
on at most ``error_rate_cap.max_min_requests`` candidate requests) — a cap that needs no stable
baseline, so a quiet or broken stable arm cannot excuse a failing candidate.

``floor_failures`` lists what a plan misses, one entry per check (stable ``check`` codes:
``first_share`` or ``experiment_share``, ``min_dwell_s``, ``failure_limit``,
``error_rate_cap``), each with the limit and the plan's value; an empty list means the plan
meets the floor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from registry.canary import _checks as c
from registry.canary.hashing import MAX_SHARE_BP

if TYPE_CHECKING:
    from registry.canary.plans import Plan


@dataclass(frozen=True, slots=True)
class Floor:
    max_first_share_bp: int
    min_dwell_s: float
    max_failure_limit: int
    max_error_rate: float
    max_cap_min_requests: int
    max_experiment_share_bp: int = 5000

    def to_dict(self) -> dict[str, Any]:
        """The floor in ``rollout.yaml``'s shape."""
        return {
            "max_first_share": _percent(self.max_first_share_bp),
            "max_experiment_share": _percent(self.max_experiment_share_bp),
            "min_dwell_s": self.min_dwell_s,
            "max_failure_limit": self.max_failure_limit,
            "error_rate_cap": {
                "max": self.max_error_rate,
                "max_min_requests": self.max_cap_min_requests,
            },
        }


# The floor of the shipped registry/policies/rollout.yaml; also the floor of a plans file
# without one.
DEFAULT_FLOOR = Floor(
    max_first_share_bp=1000,
    min_dwell_s=300.0,
    max_failure_limit=3,
    max_error_rate=0.1,
    max_cap_min_requests=1000,
)

_FLOOR_KEYS = frozenset({"max_first_share", "min_dwell_s", "max_failure_limit", "error_rate_cap"})
_OPTIONAL_FLOOR_KEYS = frozenset({"max_experiment_share"})
_CAP_KEYS = frozenset({"max", "max_min_requests"})


def _percent(share_bp: int) -> int | float:
    return share_bp // 100 if share_bp % 100 == 0 else share_bp / 100


def parse_floor(value: object, where: str, errs: c.Errors) -> Floor:
    """The ``floor`` section (every key required: it is what stands between a requester and
    an unguarded rollout); problems are appended to ``errs``."""
    raw = c.mapping(value, where, _FLOOR_KEYS | _OPTIONAL_FLOOR_KEYS, errs)
    if isinstance(value, dict):
        errs.extend(f"{where}: missing {key}" for key in sorted(_FLOOR_KEYS - raw.keys()))
    share_bp = DEFAULT_FLOOR.max_first_share_bp
    if "max_first_share" in raw:
        pct = c.number(raw["max_first_share"], f"{where}.max_first_share", errs)
        share_bp = round(pct * 100)
        if not 0 < share_bp < MAX_SHARE_BP:
            errs.append(f"{where}.max_first_share: must be > 0 and < 100 (percent)")
    dwell = c.number(raw.get("min_dwell_s", 0), f"{where}.min_dwell_s", errs)
    limit = c.integer(
        raw.get("max_failure_limit", 1), f"{where}.max_failure_limit", errs, minimum=1
    )
    cap = c.mapping(raw.get("error_rate_cap", {}), f"{where}.error_rate_cap", _CAP_KEYS, errs)
    if "error_rate_cap" in raw:
        errs.extend(
            f"{where}.error_rate_cap: missing {key}" for key in sorted(_CAP_KEYS - cap.keys())
        )
    max_rate = c.number(cap.get("max", 0), f"{where}.error_rate_cap.max", errs)
    if max_rate > 1:
        errs.append(f"{where}.error_rate_cap.max: an error rate is at most 1")
    max_requests = c.integer(
        cap.get("max_min_requests", 1), f"{where}.error_rate_cap.max_min_requests", errs, minimum=1
    )
    experiment_bp = DEFAULT_FLOOR.max_experiment_share_bp
    if "max_experiment_share" in raw:
        pct = c.number(raw["max_experiment_share"], f"{where}.max_experiment_share", errs)
        experiment_bp = round(pct * 100)
        if not 0 < experiment_bp < MAX_SHARE_BP:
            errs.append(f"{where}.max_experiment_share: must be > 0 and < 100 (percent)")
    return Floor(share_bp, dwell, limit, max_rate, max_requests, experiment_bp)


def _is_cap(rule: Any, floor: Floor) -> bool:
    return bool(
        rule.metric == "error_rate"
        and rule.compare == "absolute"
        and rule.max is not None
        and rule.max <= floor.max_error_rate
        and rule.min_requests <= floor.max_cap_min_requests
    )


def floor_failures(plan: Plan, floor: Floor) -> list[dict[str, Any]]:
    """What ``plan`` misses of ``floor`` (empty: it meets it)."""
    failures: list[dict[str, Any]] = []
    first = plan.steps[0].share_bp if plan.steps else MAX_SHARE_BP
    experiment = plan.mode == "experiment"
    limit = floor.max_experiment_share_bp if experiment else floor.max_first_share_bp
    if first > limit:
        failures.append(
            {
                "check": "experiment_share" if experiment else "first_share",
                "limit": _percent(limit),
                "value": _percent(first),
            }
        )
    for index, step in enumerate(plan.steps):
        if step.min_dwell_s < floor.min_dwell_s:
            failures.append(
                {
                    "check": "min_dwell_s",
                    "step": index,
                    "limit": floor.min_dwell_s,
                    "value": step.min_dwell_s,
                }
            )
    if plan.failure_limit > floor.max_failure_limit:
        failures.append(
            {
                "check": "failure_limit",
                "limit": floor.max_failure_limit,
                "value": plan.failure_limit,
            }
        )
    if not any(_is_cap(rule, floor) for rule in plan.rules):
        failures.append({"check": "error_rate_cap", "limit": floor.to_dict()["error_rate_cap"]})
    return failures
