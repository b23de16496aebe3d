"""A/B experiments through the real HTTP app and controller: a promotion under a plan with
``mode: experiment`` holds its split; reports carry cumulative statistics per source; the
readout endpoint judges them; a guardrail surely worse rolls back, a sample-ratio mismatch
pauses, a pass never progresses by itself; bad statistics are refused and change nothing."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from statsmodels.stats.proportion import confint_proportions_2indep

from registry.experiments import replay
from tests.factories.governance import create_deployment, decide, record_eval, request_promotion
from tests.factories.rollouts import canary, report, status, tick
from tests.fixtures.governance import Team

CAP = {"metric": "error_rate", "compare": "absolute", "max": 0.25, "min_requests": 100}
EXPERIMENT: dict[str, Any] = {
    "mode": "experiment",
    "steps": [{"share": 50, "min_dwell_s": 0}],
    "analysis": [CAP],
    "failure_limit": 1,
    "on_inconclusive": "hold",
    "experiment": {
        "alpha": 0.05,
        "power": 0.8,
        "metrics": [
            {
                "name": "thumbs_up",
                "kind": "binary",
                "role": "primary",
                "direction": "increase",
                "mde": 0.05,
                "baseline_mean": 0.3,
            },
            {
                "name": "latency_ms",
                "kind": "ratio",
                "role": "guardrail",
                "direction": "decrease",
                "margin": 0.05,
            },
        ],
    },
}


def start(team: Team, plan: dict[str, Any] = EXPERIMENT, share_bp: int = 5000) -> tuple[str, int]:
    """v1 stable, v2 approved under ``plan``: the deployment and its experiment revision."""
    v1 = team.push()
    record_eval(team.client, team.dev, v1, 0.80)
    dep = create_deployment(team.client, team.operator, team.base, team.adapter_ref)
    first = request_promotion(team.client, team.dev, v1, dep, plan="fast").json()
    assert decide(team.client, team.approver, first["id"], "approve").json()["state"] == "completed"
    v2 = team.push()
    record_eval(team.client, team.dev, v2, 0.85)
    second = request_promotion(team.client, team.dev, v2, dep, plan="ab", plan_spec=plan)
    assert second.status_code == 201, second.text
    approved = decide(team.client, team.approver, second.json()["id"], "approve").json()
    assert approved["state"] == "rolling_out", approved
    body = status(team.client, dep).json()
    assert body["share_bp"] == share_bp
    return dep, int(body["revision"])


def binary(units: int, rate: float, rng: np.random.Generator) -> dict[str, Any]:
    return {"kind": "binary", "units": units, "successes": int(rng.binomial(units, rate))}


def latency(units: int, mean_ms: float, rng: np.random.Generator) -> dict[str, Any]:
    """Per-unit request counts and summed latencies, reduced to the report's sums."""
    m = rng.poisson(4.0, units) + 1.0
    x = np.array([rng.gamma(4.0, mean_ms / 4.0, int(k)).sum() for k in m])
    return {
        "kind": "ratio",
        "units": units,
        "sum_x": float(x.sum()),
        "sum_x2": float((x * x).sum()),
        "sum_m": float(m.sum()),
        "sum_m2": float((m * m).sum()),
        "sum_xm": float((x * m).sum()),
    }


def send(team: Team, dep: str, rev: int, arm: str, stats: dict[str, Any], **extra: Any) -> Any:
    r = report(team.client, team.operator, dep, rev, arm, 1000, 5, **stats, **extra)
    return r


def arm_stats(units: int, rate: float, latency_ms: float, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "units": units,
        "metrics": {
            "thumbs_up": binary(units, rate, rng),
            "latency_ms": latency(units, latency_ms, rng),
        },
    }


def readout(team: Team, dep: str, **params: Any) -> Any:
    return team.client.get(f"/api/v1/deployments/{dep}/experiment", params=params)


def metric(body: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(m for m in body["metrics"] if m["name"] == name)
    return found


def test_readout_judges_the_latest_statistics_of_each_source(team: Team, fast_plans: None) -> None:
    dep, rev = start(team)
    empty = readout(team, dep)
    assert empty.status_code == 200, empty.text
    assert empty.json()["decision"] == "inconclusive"
    assert metric(empty.json(), "thumbs_up")["units"] == {"stable": 0, "candidate": 0}
    # Two sources (gateway shards) each send running totals; only the latest of each counts.
    early = arm_stats(100, 0.3, 200.0, seed=1)
    assert send(team, dep, rev, "stable", early, source="gw-a").status_code == 201
    for arm, rate, seed in (("stable", 0.30, 2), ("candidate", 0.36, 3)):
        for source in ("gw-a", "gw-b"):
            stats = arm_stats(4000, rate, 200.0, seed=seed + (source == "gw-b") * 10)
            assert send(team, dep, rev, arm, stats, source=source).status_code == 201
    body = readout(team, dep).json()
    thumbs = metric(body, "thumbs_up")
    assert thumbs["units"] == {"stable": 8000, "candidate": 8000}
    assert body["srm_units"] == {"stable": 8000, "candidate": 8000}
    assert (body["revision"], body["plan"], body["mode"]) == (rev, "ab", "experiment")
    assert thumbs["decision"] == "better"
    assert metric(body, "latency_ms")["decision"] in ("within_margin", "inconclusive")
    # The fixed-horizon interval is the unpooled two-proportion Wald interval (statsmodels).
    succ = {arm: body["arms"][arm]["thumbs_up"]["successes"] for arm in ("stable", "candidate")}
    low, high = confint_proportions_2indep(
        succ["candidate"], 8000, succ["stable"], 8000, method="wald", compare="diff"
    )
    assert thumbs["fixed"]["low"] == pytest.approx(low, abs=1e-9)
    assert thumbs["fixed"]["high"] == pytest.approx(high, abs=1e-9)
    # The readout is replayable from what it records.
    assert replay(body).to_dict()["metrics"] == body["metrics"]
    assert readout(team, dep, revision=rev).json()["metrics"] == body["metrics"]


def test_experiment_mode_never_progresses_by_itself(team: Team, fast_plans: None) -> None:
    dep, rev = start(team)
    for arm, rate in (("stable", 0.30), ("candidate", 0.40)):
        assert send(team, dep, rev, arm, arm_stats(3000, rate, 200.0, seed=7)).status_code == 201
    assert tick(team, dep) == []  # a pass holds silently: awaiting a person's decision
    body = status(team.client, dep).json()
    assert (body["revision"], body["share_bp"]) == (rev, 5000)
    assert readout(team, dep).json()["decision"] in ("better", "inconclusive")


def test_a_guardrail_surely_worse_rolls_back_with_the_readout_as_evidence(
    team: Team, fast_plans: None
) -> None:
    dep, rev = start(team)
    send(team, dep, rev, "stable", arm_stats(3000, 0.3, 200.0, seed=11))
    send(team, dep, rev, "candidate", arm_stats(3000, 0.3, 300.0, seed=12))
    decided = tick(team, dep)
    assert [d["action"] for d in decided] == ["rollback"]
    body = status(team.client, dep).json()
    assert body["candidate"] is None
    latest = team.client.get(f"/api/v1/deployments/{dep}/decisions", params={"limit": 1})
    evidence = latest.json()["items"][0]["evidence"]
    guardrail = evidence["guardrails"][0]
    assert (guardrail["metric"], guardrail["outcome"], guardrail["reason"]) == (
        "experiment:latency_ms",
        "fail",
        "surely_worse",
    )
    recorded = evidence["experiment"]
    assert metric(recorded, "latency_ms")["decision"] == "worse"
    assert replay(recorded).to_dict()["metrics"] == recorded["metrics"]


def test_a_sample_ratio_mismatch_pauses_a_canary_and_says_why(team: Team, fast_plans: None) -> None:
    plan = copy.deepcopy(EXPERIMENT)
    plan.update(
        mode="rollout",
        steps=[{"share": 10, "min_dwell_s": 0}, {"share": 100, "min_dwell_s": 0}],
    )
    dep, rev = start(team, plan, share_bp=1000)
    # At 10 %, 9,000 stable units should come with ~1,000 candidate units: 800 is a loss.
    send(team, dep, rev, "stable", arm_stats(9000, 0.3, 200.0, seed=21))
    send(team, dep, rev, "candidate", arm_stats(800, 0.3, 200.0, seed=22))
    body = readout(team, dep).json()
    assert body["srm"]["flagged"] is True
    assert tick(team, dep) == [
        {"deployment": dep, "action": "hold", "reason": "sample_ratio_mismatch"}
    ]
    assert status(team.client, dep).json()["share_bp"] == 1000  # not advanced
    # The split fixed (cumulative totals with the candidate's units back): the flag clears.
    send(team, dep, rev, "candidate", arm_stats(1000, 0.3, 200.0, seed=23))
    assert readout(team, dep).json()["srm"]["flagged"] is False


@pytest.mark.parametrize(
    ("stats", "reason"),
    [
        ({"units": 10, "metrics": {"m": {"kind": "binary", "units": 10, "successes": 11}}},
         "bad_statistics"),
        ({"units": 10, "metrics": {"m": {"kind": "binary", "units": 11, "successes": 1}}},
         "metric_units_exceed_units"),
        ({"metrics": {"m": {"kind": "ratio", "units": 4, "sum_x": 10.0, "sum_x2": 1.0,
                            "sum_m": 4.0, "sum_m2": 4.0, "sum_xm": 10.0}}},
         "bad_statistics"),
    ],
)  # fmt: skip
def test_inconsistent_statistics_are_refused_and_change_nothing(
    team: Team, fast_plans: None, stats: dict[str, Any], reason: str
) -> None:
    dep, rev = start(team)
    r = send(team, dep, rev, "candidate", stats)
    assert r.status_code == 422, r.text
    assert (r.json()["error"], r.json()["context"]["reason"]) == ("invalid_report", reason)
    assert readout(team, dep).json()["reports"]["candidate"]["report_ids"] == []


@pytest.mark.parametrize(
    "stats",
    [
        {"metrics": {"Bad Name": {"kind": "binary", "units": 1, "successes": 0}}},
        {"metrics": {"m": {"kind": "poisson", "units": 1}}},
        {"metrics": {"m": {"kind": "binary", "units": -1, "successes": 0}}},
        {"units": -5},
        {"source": "no spaces allowed"},
        {"metrics": {f"m{i}": {"kind": "binary", "units": 1, "successes": 0} for i in range(33)}},
    ],
)
def test_malformed_statistics_are_request_errors(
    team: Team, fast_plans: None, stats: dict[str, Any]
) -> None:
    dep, rev = start(team)
    r = send(team, dep, rev, "candidate", stats)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_request"
    assert readout(team, dep).json()["reports"]["candidate"]["report_ids"] == []


def test_no_experiment_and_unknown_revision(team: Team, fast_plans: None) -> None:
    c = canary(team, plan="fast")  # a plain canary: v2 at 5 %, no experiment section
    r = readout(team, c.deployment)
    assert (r.status_code, r.json()["error"]) == (409, "no_experiment")
    assert r.json()["context"]["reason"] == "plan_without_experiment"
    r = readout(team, c.deployment, revision=1)  # v1 alone: nothing to compare
    assert (r.status_code, r.json()["context"]["reason"]) == (409, "no_split")
    r = readout(team, c.deployment, revision=999)
    assert (r.status_code, r.json()["error"]) == (404, "revision_not_found")
    r = readout(team, "no-such-deployment")
    assert (r.status_code, r.json()["error"]) == (404, "deployment_not_found")


def test_a_canary_with_guardrails_advances_when_surely_within_margin_then_completes(
    team: Team, fast_plans: None
) -> None:
    plan = copy.deepcopy(EXPERIMENT)
    plan.update(
        mode="rollout",
        steps=[{"share": 10, "min_dwell_s": 0}, {"share": 100, "min_dwell_s": 0}],
    )
    plan["experiment"]["metrics"][1]["margin"] = 0.5
    dep, rev = start(team, plan, share_bp=1000)
    send(team, dep, rev, "stable", arm_stats(18_000, 0.3, 200.0, seed=31))
    send(team, dep, rev, "candidate", arm_stats(2000, 0.3, 200.0, seed=32))
    assert metric(readout(team, dep).json(), "latency_ms")["decision"] == "within_margin"
    assert [d["action"] for d in tick(team, dep)] == ["advance"]
    full = status(team.client, dep).json()
    assert full["share_bp"] == 10_000
    # At 100 % there is no split to compare: the readout says so, the caps alone decide.
    r = readout(team, dep)
    assert (r.status_code, r.json()["context"]["reason"]) == (409, "no_split")
    report(team.client, team.operator, dep, full["revision"], "candidate", 500, 1)
    assert [d["action"] for d in tick(team, dep)] == ["complete"]


def test_a_metric_reported_as_another_kind_than_the_plan_says_is_refused(
    team: Team, fast_plans: None
) -> None:
    dep, rev = start(team)
    wrong = {"metrics": {"latency_ms": {"kind": "binary", "units": 10, "successes": 3}}}
    r = send(team, dep, rev, "stable", wrong)
    assert r.status_code == 422, r.text
    assert r.json()["context"] == {
        "reason": "metric_kind_mismatch", "metric": "latency_ms", "kind": "ratio"
    }  # fmt: skip
    # A metric the plan does not name is stored (and ignored by the readout).
    other = {"metrics": {"clicks": {"kind": "binary", "units": 10, "successes": 3}}}
    assert send(team, dep, rev, "stable", other).status_code == 201
    assert [m["name"] for m in readout(team, dep).json()["metrics"]] == ["thumbs_up", "latency_ms"]
