"""Promotion gates: parsing gates.yaml (strict) and evaluating each gate (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from registry.errors import InvalidPolicy
from registry.policy.gates import GATE_NAMES, EvalPoint, GateResult, evaluate_gates, gates_passed
from registry.policy.gates_config import GateConfig, NoRegression, Threshold, parse_gates

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def ev(
    suite: str,
    metric: str,
    value: float,
    *,
    hib: bool = True,
    digest: str | None = "sha256:d1",
    at: int = 0,
) -> EvalPoint:
    return EvalPoint(suite, metric, value, hib, digest, T0 + timedelta(minutes=at))


def run(
    cfg: GateConfig,
    candidate: list[EvalPoint],
    stable: list[EvalPoint] | None = None,
    state: str = "validated",
) -> dict[str, GateResult]:
    results = evaluate_gates(cfg, version_state=state, candidate=candidate, stable=stable)
    assert [r.name for r in results] == list(GATE_NAMES)
    return {r.name: r for r in results}


ACC = [ev("qa", "accuracy", 0.80)]


# --------------------------------------------------------------------------- evaluation


class TestValidated:
    @pytest.mark.parametrize(
        ("state", "required", "passed", "reason"),
        [
            ("validated", True, True, None),
            ("registered", True, False, "not_validated"),
            ("quarantined", True, False, "not_validated"),
            ("archived", True, False, "not_validated"),
            ("registered", False, True, "not_required"),
        ],
    )
    def test_state(self, state: str, required: bool, passed: bool, reason: str | None) -> None:
        gate = run(GateConfig(require_validated=required), ACC, state=state)["validated"]
        assert (gate.passed, gate.reason) == (passed, reason)


class TestEvaluationsPresent:
    @pytest.mark.parametrize(
        ("points", "minimum", "passed"),
        [
            ([], 1, False),
            ([], 0, True),
            (ACC, 1, True),
            (ACC, 2, False),
            # re-recording the same (suite, metric, digest) is still one evaluation
            ([ev("qa", "accuracy", 0.8), ev("qa", "accuracy", 0.9, at=1)], 2, False),
            ([ev("qa", "accuracy", 0.8), ev("qa", "f1", 0.7)], 2, True),
        ],
    )
    def test_count(self, points: list[EvalPoint], minimum: int, passed: bool) -> None:
        gate = run(GateConfig(min_evaluations=minimum), points)["evaluations_present"]
        assert gate.passed is passed
        assert gate.reason == (None if passed else "too_few_evaluations")


class TestRequiredSuites:
    def test_present(self) -> None:
        gate = run(GateConfig(required_suites=("qa",)), ACC)["required_suites"]
        assert gate.passed

    def test_missing_listed(self) -> None:
        gate = run(GateConfig(required_suites=("qa", "safety", "tox")), ACC)["required_suites"]
        assert not gate.passed
        assert gate.reason == "missing_suites"
        assert gate.detail["missing"] == ["safety", "tox"]


class TestThresholds:
    @pytest.mark.parametrize(
        ("threshold", "points", "passed", "problem"),
        [
            (Threshold("qa", "accuracy", min=0.7), ACC, True, None),
            (Threshold("qa", "accuracy", min=0.8), ACC, True, None),  # boundary passes
            (Threshold("qa", "accuracy", min=0.81), ACC, False, "below_min"),
            (
                Threshold("qa", "latency_ms", max=200),
                [ev("qa", "latency_ms", 250, hib=False)],
                False,
                "above_max",
            ),
            (
                Threshold("qa", "latency_ms", max=200),
                [ev("qa", "latency_ms", 200, hib=False)],
                True,
                None,
            ),
            (Threshold("qa", "accuracy", min=0.5, max=0.79), ACC, False, "above_max"),
            (Threshold("safety", "refusal", min=0.9), ACC, False, "missing"),
            # the latest value counts, not the best one
            (
                Threshold("qa", "accuracy", min=0.75),
                [
                    ev("qa", "accuracy", 0.9, at=0),
                    ev("qa", "accuracy", 0.7, at=5, digest="sha256:d2"),
                ],
                False,
                "below_min",
            ),
        ],
    )
    def test_threshold(
        self, threshold: Threshold, points: list[EvalPoint], passed: bool, problem: str | None
    ) -> None:
        gate = run(GateConfig(thresholds=(threshold,)), points)["thresholds"]
        assert gate.passed is passed
        if problem:
            assert gate.reason == "threshold_not_met"
            [failure] = gate.detail["failures"]
            assert failure["problem"] == problem
            assert (failure["suite"], failure["metric"]) == (threshold.suite, threshold.metric)

    def test_every_failure_listed_with_its_value(self) -> None:
        cfg = GateConfig(
            thresholds=(Threshold("qa", "accuracy", min=0.9), Threshold("qa", "f1", min=0.9))
        )
        gate = run(cfg, [ev("qa", "accuracy", 0.8), ev("qa", "f1", 0.5)])["thresholds"]
        assert [(f["metric"], f["value"]) for f in gate.detail["failures"]] == [
            ("accuracy", 0.8),
            ("f1", 0.5),
        ]


class TestNoRegression:
    def test_first_promotion_passes(self) -> None:
        gate = run(GateConfig(), ACC, stable=None)["no_regression"]
        assert (gate.passed, gate.reason) == (True, "no_stable_version")

    def test_disabled(self) -> None:
        cfg = GateConfig(no_regression=NoRegression(enabled=False))
        gate = run(cfg, [ev("qa", "accuracy", 0.1)], [ev("qa", "accuracy", 0.9)])["no_regression"]
        assert (gate.passed, gate.reason) == (True, "disabled")

    @pytest.mark.parametrize(
        ("cand", "stab", "hib", "tol", "passed"),
        [
            (0.80, 0.80, True, 0.0, True),
            (0.81, 0.80, True, 0.0, True),
            (0.79, 0.80, True, 0.0, False),
            (0.70, 0.80, True, 0.1, True),  # exactly at the tolerance (float noise) passes
            (0.69, 0.80, True, 0.1, False),
            # lower is better (loss, latency)
            (1.2, 1.0, False, 0.0, False),
            (0.9, 1.0, False, 0.0, True),
            (1.3, 1.0, False, 0.3, True),  # at tolerance
            (1.31, 1.0, False, 0.3, False),
        ],
    )
    def test_tolerance(self, cand: float, stab: float, hib: bool, tol: float, passed: bool) -> None:
        cfg = GateConfig(no_regression=NoRegression(default_tolerance=tol))
        gate = run(cfg, [ev("qa", "m", cand, hib=hib)], [ev("qa", "m", stab, hib=hib)])[
            "no_regression"
        ]
        assert gate.passed is passed
        if not passed:
            assert gate.reason == "regression"
            [reg] = gate.detail["regressions"]
            assert (reg["candidate"], reg["stable"], reg["tolerance"]) == (cand, stab, tol)
            assert reg["delta"] == pytest.approx(cand - stab)

    def test_per_metric_and_per_suite_tolerance(self) -> None:
        nr = NoRegression(default_tolerance=0.0, tolerance={"accuracy": 0.05, "qa/f1": 0.2})
        cand = [ev("qa", "accuracy", 0.76), ev("qa", "f1", 0.61), ev("chat", "f1", 0.61)]
        stab = [ev("qa", "accuracy", 0.80), ev("qa", "f1", 0.80), ev("chat", "f1", 0.62)]
        gate = run(GateConfig(no_regression=nr), cand, stab)["no_regression"]
        assert [(r["suite"], r["metric"]) for r in gate.detail["regressions"]] == [("chat", "f1")]

    def test_different_dataset_digests_are_not_compared(self) -> None:
        gate = run(
            GateConfig(),
            [ev("qa", "accuracy", 0.1, digest="sha256:new")],
            [ev("qa", "accuracy", 0.9, digest="sha256:old")],
        )["no_regression"]
        assert gate.passed
        assert gate.detail["compared"] == 0

    def test_latest_of_duplicates_wins(self) -> None:
        cand = [ev("qa", "accuracy", 0.5, at=0), ev("qa", "accuracy", 0.85, at=10)]
        stab = [ev("qa", "accuracy", 0.95, at=0), ev("qa", "accuracy", 0.8, at=3)]
        assert run(GateConfig(), cand, stab)["no_regression"].passed
        cand_rev = [ev("qa", "accuracy", 0.85, at=0), ev("qa", "accuracy", 0.5, at=10)]
        assert not run(GateConfig(), cand_rev, stab)["no_regression"].passed

    def test_metrics_only_on_one_side_are_ignored(self) -> None:
        gate = run(GateConfig(), [ev("qa", "accuracy", 0.8)], [ev("qa", "f1", 0.9)])[
            "no_regression"
        ]
        assert gate.passed


class TestRegressionSuites:
    CFG = GateConfig(regression_suites=("base-mmlu",))

    def test_none_configured(self) -> None:
        gate = run(GateConfig(), ACC)["regression_suites"]
        assert (gate.passed, gate.reason) == (True, None)

    def test_missing_suite_fails_even_on_first_promotion(self) -> None:
        gate = run(self.CFG, ACC, stable=None)["regression_suites"]
        assert (gate.passed, gate.reason) == (False, "missing_suites")
        assert gate.detail["missing"] == ["base-mmlu"]

    def test_present_on_first_promotion(self) -> None:
        gate = run(self.CFG, [ev("base-mmlu", "accuracy", 0.6)], stable=None)["regression_suites"]
        assert (gate.passed, gate.reason) == (True, "no_stable_version")

    def test_regression_on_the_suite_fails(self) -> None:
        gate = run(
            self.CFG,
            [ev("base-mmlu", "accuracy", 0.55), ev("qa", "accuracy", 0.9)],
            [ev("base-mmlu", "accuracy", 0.60), ev("qa", "accuracy", 0.8)],
        )["regression_suites"]
        assert (gate.passed, gate.reason) == (False, "regression")
        assert [r["suite"] for r in gate.detail["regressions"]] == ["base-mmlu"]

    def test_applies_even_when_no_regression_is_disabled(self) -> None:
        cfg = GateConfig(
            regression_suites=("base-mmlu",), no_regression=NoRegression(enabled=False)
        )
        results = run(cfg, [ev("base-mmlu", "acc", 0.5)], [ev("base-mmlu", "acc", 0.6)])
        assert results["no_regression"].passed
        assert not results["regression_suites"].passed


class TestResults:
    def test_all_pass_and_serialise(self) -> None:
        results = evaluate_gates(GateConfig(), version_state="validated", candidate=ACC, stable=ACC)
        assert gates_passed(results)
        payload = json.dumps([r.to_dict() for r in results])
        assert json.loads(payload)[0] == {
            "name": "validated",
            "passed": True,
            "reason": None,
            "detail": {"state": "validated"},
        }

    def test_any_failure_fails(self) -> None:
        results = evaluate_gates(
            GateConfig(), version_state="registered", candidate=ACC, stable=None
        )
        assert not gates_passed(results)


# --------------------------------------------------------------------------- parsing

FULL = """
defaults:
  approvals: 1
  min_evaluations: 2
  require_validated: true
  required_suites: [qa]
  thresholds:
    - {suite: qa, metric: accuracy, min: 0.7}
    - {suite: qa, metric: latency_ms, max: 300}
  no_regression: {enabled: true, default_tolerance: 0.01, tolerance: {accuracy: 0.02}}
  regression_suites: [base-mmlu]
rules:
  - match: {namespace: "acme", deployment: "acme-prod-*"}
    approvals: 3
  - match: {namespace: "acme"}
    approvals: 2
    no_regression: {default_tolerance: 0.05}
  - match: {deployment: "*-canary"}
    require_validated: false
    thresholds: []
"""


class TestParse:
    def test_empty_file_is_all_defaults(self) -> None:
        assert parse_gates("").defaults == GateConfig()

    def test_full(self) -> None:
        gates = parse_gates(FULL)
        d = gates.defaults
        assert (d.approvals, d.min_evaluations, d.required_suites) == (1, 2, ("qa",))
        assert d.thresholds == (
            Threshold("qa", "accuracy", min=0.7),
            Threshold("qa", "latency_ms", max=300.0),
        )
        assert d.no_regression == NoRegression(True, 0.01, {"accuracy": 0.02})
        assert d.regression_suites == ("base-mmlu",)

    @pytest.mark.parametrize(
        ("namespace", "deployment", "approvals", "tolerance", "validated"),
        [
            ("acme", "acme-prod-eu", 3, 0.01, True),  # first rule wins over the second
            ("acme", "acme-staging", 2, 0.05, True),
            ("acme", "acme-canary", 2, 0.05, True),  # namespace rule comes first
            ("beta", "beta-canary", 1, 0.01, False),
            ("beta", "beta-prod", 1, 0.01, True),  # no rule: defaults
            ("ACME", "acme-prod-eu", 1, 0.01, True),  # globs are case-sensitive
        ],
    )
    def test_rule_matching_order(
        self, namespace: str, deployment: str, approvals: int, tolerance: float, validated: bool
    ) -> None:
        cfg = parse_gates(FULL).for_target(namespace, deployment)
        assert cfg.approvals == approvals
        assert cfg.no_regression.default_tolerance == tolerance
        assert cfg.require_validated is validated

    def test_rules_merge_over_defaults(self) -> None:
        cfg = parse_gates(FULL).for_target("acme", "acme-staging")
        # untouched keys come from the defaults; no_regression merges key by key
        assert cfg.required_suites == ("qa",)
        assert cfg.no_regression.tolerance == {"accuracy": 0.02}
        assert cfg.no_regression.enabled

    def test_rule_without_match_matches_everything(self) -> None:
        gates = parse_gates("rules:\n  - approvals: 4\n")
        assert gates.for_target("any", "thing").approvals == 4

    @pytest.mark.parametrize(
        "text",
        [
            "defaults: [unclosed",
            "- just\n- a list\n",
            "defaultz: {}\n",
            "defaults:\n  approvals: two\n",
            "defaults:\n  approvals: true\n",
            "defaults:\n  approvals: -1\n",
            "defaults:\n  require_validated: yes please\n",
            "defaults:\n  required_suites: qa\n",
            "defaults:\n  required_suites: [1]\n",
            "defaults:\n  thresholds: [{suite: qa, metric: acc}]\n",
            "defaults:\n  thresholds: [{suite: qa, metric: acc, min: 0.9, max: 0.1}]\n",
            "defaults:\n  thresholds: [{suite: qa, metric: acc, minimum: 0.9}]\n",
            "defaults:\n  thresholds: [{metric: acc, min: 0.9}]\n",
            "defaults:\n  thresholds: [{suite: qa, metric: acc, min: .nan}]\n",
            "defaults:\n  no_regression: {enabled: true, tolerence: {}}\n",
            "defaults:\n  no_regression: {default_tolerance: -0.1}\n",
            "defaults:\n  no_regression: {tolerance: {acc: x}}\n",
            "defaults:\n  no_regression: {tolerance: [acc]}\n",
            "rules: {approvals: 2}\n",
            "rules:\n  - match: {team: acme}\n",
            "rules:\n  - match: {namespace: 3}\n",
            "rules:\n  - approvers: 2\n",
            "rules:\n  - no_regression: {enabld: false}\n",
            "!!python/object/apply:os.system ['true']\n",
        ],
    )
    def test_invalid(self, text: str) -> None:
        with pytest.raises(InvalidPolicy) as info:
            parse_gates(text)
        assert info.value.code == "invalid_policy"
        assert info.value.context["errors"]

    def test_all_problems_reported(self) -> None:
        with pytest.raises(InvalidPolicy) as info:
            parse_gates("defaults:\n  approvals: x\n  min_evaluations: y\n  bogus: 1\n")
        errors: list[Any] = info.value.context["errors"]
        assert len(errors) == 3
