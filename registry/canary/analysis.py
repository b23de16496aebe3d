"""Canary analysis: serving reports → per-arm figures → rule results → the controller's action.

Pure code (no database): the controller loads the reports of the current step's window per arm,
and calls ``aggregate`` (per arm) and ``analyze`` on the whole step and on its most recent
reports (``recent_slice``: the newest reports holding the rules' minimum request count),
``combine`` for the verdict, then ``next_action``; it stores the ``Analysis`` evidence (report
ids and computed values) with the decision it takes.

Stable reason codes (snake_case, part of the recorded evidence):

* ``RuleResult.reason``: ``within_limit`` (pass); ``worse_than_stable``, ``above_max``,
  ``below_min`` (fail); ``too_few_requests``, ``too_few_stable_requests``, ``no_data``,
  ``no_stable_data`` (inconclusive); ``stable_not_serving`` (skipped: a ``compare: stable`` rule
  at the 100 % step when no stable figures are given).
* ``Action.reason``: ``dwell``, ``inconclusive``, ``failure_below_limit`` (hold); ``passed``
  (advance); ``passed_final_step`` (complete); ``failure_limit_reached``, ``inconclusive``
  (rollback).

A value exactly at a limit passes (compared with a relative tolerance of 1e-9).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar

from registry.canary.hashing import MAX_SHARE_BP
from registry.canary.plans import SCORE_PREFIX, Plan, Rule

Outcome = Literal["pass", "fail", "inconclusive"]
RuleOutcome = Literal["pass", "fail", "inconclusive", "skipped"]
ActionKind = Literal["hold", "advance", "complete", "rollback"]


class ReportLike(Protocol):
    """What ``aggregate`` reads of a serving report (an ORM row or any object alike)."""

    @property
    def id(self) -> object: ...
    @property
    def requests(self) -> int: ...
    @property
    def errors(self) -> int: ...
    @property
    def latency_p50_ms(self) -> float | None: ...
    @property
    def latency_p95_ms(self) -> float | None: ...
    @property
    def scores(self) -> Mapping[str, float] | None: ...


R = TypeVar("R", bound=ReportLike)


def _finite(value: float | None, what: str, *, non_negative: bool = True) -> None:
    if value is None:
        return
    if not math.isfinite(value) or (non_negative and value < 0):
        raise ValueError(f"{what} must be a finite number{' >= 0' if non_negative else ''}")


@dataclass(frozen=True, slots=True)
class ArmStats:
    """One arm's figures over a window of reports."""

    requests: int = 0
    errors: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    scores: Mapping[str, float] = field(default_factory=dict)
    report_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.errors <= self.requests:
            raise ValueError("need 0 <= errors <= requests")
        _finite(self.latency_p50_ms, "latency_p50_ms")
        _finite(self.latency_p95_ms, "latency_p95_ms")
        for value in self.scores.values():
            _finite(value, "score", non_negative=False)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def value(self, metric: str) -> float | None:
        """The figure a rule's ``metric`` names; ``None`` when the window has no data for it."""
        if metric == "error_rate":
            return self.error_rate
        if metric == "latency_p50_ms":
            return self.latency_p50_ms
        if metric == "latency_p95_ms":
            return self.latency_p95_ms
        if metric.startswith(SCORE_PREFIX):
            return self.scores.get(metric[len(SCORE_PREFIX) :])
        raise ValueError(f"unknown metric {metric!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p95_ms": self.latency_p95_ms,
            "scores": dict(sorted(self.scores.items())),
            "report_ids": list(self.report_ids),
        }


class _Mean:
    """A request-weighted mean; reports without the value (or without requests) do not count."""

    __slots__ = ("total", "weight")

    def __init__(self) -> None:
        self.total = 0.0
        self.weight = 0

    def add(self, value: float | None, requests: int) -> None:
        if value is not None and requests:
            self.total += value * requests
            self.weight += requests

    def result(self) -> float | None:
        return self.total / self.weight if self.weight else None


def aggregate(reports: Sequence[ReportLike]) -> ArmStats:
    """Sum the counts of one arm's reports; latencies and scores are request-weighted means.

    ValueError for a negative count, more errors than requests, or a non-finite value.
    """
    requests = errors = 0
    p50, p95 = _Mean(), _Mean()
    scores: dict[str, _Mean] = {}
    for report in reports:
        req, err = report.requests, report.errors
        if not (isinstance(req, int) and isinstance(err, int) and 0 <= err <= req):
            raise ValueError(f"report {report.id}: need integers 0 <= errors <= requests")
        requests, errors = requests + req, errors + err
        for mean, value, what in (
            (p50, report.latency_p50_ms, "latency_p50_ms"),
            (p95, report.latency_p95_ms, "latency_p95_ms"),
        ):
            _finite(value, what)
            mean.add(value, req)
        for name, value in (report.scores or {}).items():
            _finite(value, "score", non_negative=False)
            scores.setdefault(name, _Mean()).add(value, req)
    means = {name: mean.result() for name, mean in sorted(scores.items())}
    return ArmStats(
        requests=requests,
        errors=errors,
        latency_p50_ms=p50.result(),
        latency_p95_ms=p95.result(),
        scores={name: value for name, value in means.items() if value is not None},
        report_ids=tuple(str(r.id) for r in reports),
    )


# --------------------------------------------------------------------------- analysis


@dataclass(frozen=True, slots=True)
class RuleResult:
    metric: str
    outcome: RuleOutcome
    candidate_value: float | None
    stable_value: float | None
    limit: float | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "outcome": self.outcome,
            "candidate_value": self.candidate_value,
            "stable_value": self.stable_value,
            "limit": self.limit,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Analysis:
    outcome: Outcome
    rules: list[RuleResult]
    evidence: dict[str, Any]


def _at_most(value: float, limit: float) -> bool:
    return value <= limit or math.isclose(value, limit, rel_tol=1e-9, abs_tol=1e-12)


def _at_least(value: float, limit: float) -> bool:
    return value >= limit or math.isclose(value, limit, rel_tol=1e-9, abs_tol=1e-12)


def _judge(rule: Rule, candidate: ArmStats, stable: ArmStats, final_step: bool) -> RuleResult:
    cand = candidate.value(rule.metric)
    base = stable.value(rule.metric) if rule.compare == "stable" else None

    def result(outcome: RuleOutcome, reason: str, limit: float | None = None) -> RuleResult:
        return RuleResult(rule.metric, outcome, cand, base, limit, reason)

    if candidate.requests < rule.min_requests:
        return result("inconclusive", "too_few_requests")
    if rule.compare == "absolute":
        if cand is None:
            return result("inconclusive", "no_data")
        if rule.max is not None and not _at_most(cand, rule.max):
            return result("fail", "above_max", rule.max)
        if rule.min is not None and not _at_least(cand, rule.min):
            return result("fail", "below_min", rule.min)
        return result("pass", "within_limit", rule.max if rule.max is not None else rule.min)
    if final_step and stable.requests == 0:
        return result("skipped", "stable_not_serving")
    if stable.requests < rule.min_stable_requests:
        return result("inconclusive", "too_few_stable_requests")
    if cand is None:
        return result("inconclusive", "no_data")
    if base is None:
        return result("inconclusive", "no_stable_data")
    delta = rule.max_delta or 0.0
    if rule.higher_is_better:
        limit = base * (rule.min_ratio if rule.min_ratio is not None else 1.0) - delta
        ok = _at_least(cand, limit)
    else:
        limit = base * (rule.max_ratio if rule.max_ratio is not None else 1.0) + delta
        ok = _at_most(cand, limit)
    return (
        result("pass", "within_limit", limit) if ok else result("fail", "worse_than_stable", limit)
    )


def analyze(
    plan: Plan, *, candidate: ArmStats, stable: ArmStats, share_bp: int | None = None
) -> Analysis:
    """Judge every rule of ``plan`` on one window's figures.

    ``fail`` when any rule fails, else ``inconclusive`` when any rule is, else ``pass`` (also
    for a plan without rules). ``share_bp`` is the candidate's current share: at 10000 the stable
    arm serves nothing, so a ``compare: stable`` rule is ``skipped`` unless ``stable`` carries
    figures (a controller may pass the stable arm's figures of the previous step).
    """
    final_step = share_bp == MAX_SHARE_BP
    results = [_judge(rule, candidate, stable, final_step) for rule in plan.rules]
    outcomes = {r.outcome for r in results}
    outcome: Outcome = (
        "fail" if "fail" in outcomes else "inconclusive" if "inconclusive" in outcomes else "pass"
    )
    evidence = {
        "plan": plan.name,
        "outcome": outcome,
        "share_bp": share_bp,
        "candidate": candidate.to_dict(),
        "stable": stable.to_dict(),
        "rules": [r.to_dict() for r in results],
    }
    return Analysis(outcome, results, evidence)


def recent_slice(newest_first: Sequence[R], need: int) -> list[R]:
    """The newest reports that together hold at least ``need`` requests (all of them when they
    hold fewer). ``newest_first``: one arm's reports, newest window first."""
    taken: list[R] = []
    total = 0
    for report in newest_first:
        if total >= need:
            break
        taken.append(report)
        total += report.requests
    return taken


def combine(step: Analysis, recent: Analysis | None) -> Analysis:
    """The verdict from the step's whole window and from its most recent reports.

    A failing recent slice fails the step even when the whole window passes: a candidate that
    turned bad late is not hidden behind its earlier healthy traffic. Otherwise the whole window
    decides (advancing needs it to pass). The evidence describes the deciding window
    (``"window": "step" | "recent"``) and carries the other one too.
    """
    if recent is None:
        return Analysis(step.outcome, step.rules, {**step.evidence, "window": "step"})
    if recent.outcome == "fail" and step.outcome != "fail":
        evidence = {**recent.evidence, "window": "recent", "step": step.evidence}
        return Analysis("fail", recent.rules, evidence)
    evidence = {**step.evidence, "window": "step", "recent": recent.evidence}
    return Analysis(step.outcome, step.rules, evidence)


# --------------------------------------------------------------------------- decision


@dataclass(frozen=True, slots=True)
class Action:
    """What the controller does now. ``failures`` is the consecutive failure count to keep for
    the next call; ``next_step_index`` is the step to be at (the current one for ``hold``,
    ``None`` for ``complete`` and ``rollback``)."""

    kind: ActionKind
    reason: str
    next_step_index: int | None
    failures: int
    dwell_remaining_s: float = 0.0


def next_action(
    plan: Plan,
    *,
    step_index: int,
    step_started_at: datetime,
    now: datetime,
    analysis: Analysis,
    consecutive_failures: int,
) -> Action:
    """Decide from the current step, how long it has lasted and the latest analysis.

    A failing analysis counts a failure (rollback once ``failure_limit`` consecutive failures
    are reached, even before the dwell is over); a passing one resets the count; an inconclusive
    one leaves it. Before ``min_dwell_s`` the step holds. After it: pass → advance (complete at
    the last step); inconclusive → hold or rollback per ``on_inconclusive``. Call it once per
    analysis of new reports, or a failure is counted more than once.
    """
    if not 0 <= step_index < len(plan.steps):
        raise ValueError(f"step_index {step_index} outside plan {plan.name!r}")
    if consecutive_failures < 0:
        raise ValueError("consecutive_failures must be >= 0")
    if step_started_at.utcoffset() is None or now.utcoffset() is None:
        raise ValueError("step_started_at and now must be timezone-aware")
    elapsed = max(0.0, (now - step_started_at).total_seconds())
    remaining = max(0.0, plan.steps[step_index].min_dwell_s - elapsed)
    outcome = analysis.outcome

    def act(kind: ActionKind, reason: str, failures: int) -> Action:
        nxt = {"hold": step_index, "advance": step_index + 1}.get(kind)
        return Action(kind, reason, nxt, failures, remaining)

    if outcome == "fail":
        failures = consecutive_failures + 1
        if failures >= plan.failure_limit:
            return act("rollback", "failure_limit_reached", failures)
        return act("hold", "failure_below_limit", failures)
    failures = 0 if outcome == "pass" else consecutive_failures
    if remaining > 0:
        return act("hold", "dwell", failures)
    if outcome == "inconclusive":
        return act(plan.on_inconclusive, "inconclusive", failures)
    if step_index == len(plan.steps) - 1:
        return act("complete", "passed_final_step", failures)
    return act("advance", "passed", failures)
