"""The rollout plans built in for a policy set without ``rollout_text``."""

# The shipped policies/rollout.yaml, verbatim (a test keeps the two equal).
DEFAULT_PLANS_TEXT = """\
# Rollout plans: how a candidate version's traffic share grows after an approved promotion, and
# when the controller rolls it back by itself. Parsed strictly by registry/rollout/plans.py
# (unknown keys, wrong types or bad shares refuse the whole policy set).
#
# default_plan: canary         the plan a promotion uses when it names none
# floor:                       what every plan must meet: the plans below (or the file is
#                              refused) and a plan a requester sends with a promotion request
#                              (or the request is refused: 422 plan_below_floor, its context
#                              listing each failed check). Optional: without it, the floor below.
#   max_first_share: 10        the first step's share at most (percent, < 100: always a canary)
#   min_dwell_s: 300           every step lasts at least this long (seconds)
#   max_failure_limit: 3       a plan's failure_limit at most this
#   error_rate_cap:            at least one rule {metric: error_rate, compare: absolute} with
#     max: 0.1                   max at most this: a cap that needs no stable baseline, so a
#     max_min_requests: 1000     quiet stable arm cannot excuse a failing candidate; judged on
#                                min_requests at most this many candidate requests
# plans:
#   <name>:                    letters, digits, "_", "-", "." (1..64 characters)
#     steps:                   the candidate's share in percent at each step: 0 < share <= 100
#       - {share: 10, min_dwell_s: 600}   (0.01 % resolution), strictly increasing, the last 100;
#                              min_dwell_s: seconds a step lasts at least before it may advance
#                              (at the last step: before the candidate becomes the stable version)
#     analysis:                rules over the serving reports of the current step (its revision);
#                              every rule must pass for the step to advance (an empty list always
#                              passes). Judged on the whole step and on its newest reports that
#                              hold min_requests candidate requests: either failing is a failure
#       - metric: error_rate   error_rate (errors / requests), latency_p50_ms, latency_p95_ms
#                              (request-weighted means of the reports), or score:<name>
#                              (request-weighted mean of the reports' online score <name>)
#         compare: stable      stable: candidate against the stable arm of the same window (when
#                              that has too few requests: the stable version's reports on the
#                              newest earlier revision that has enough, e.g. at the 100 % step)
#                                lower is better:  candidate <= stable * max_ratio + max_delta
#                                higher is better: candidate >= stable * min_ratio - max_delta
#                                (max_ratio / min_ratio default 1, max_delta 0; give at least one)
#                              absolute: candidate <= max and/or candidate >= min
#         max_ratio: 1.5
#         max_delta: 0.01
#         min_requests: 200    candidate requests needed in the window; fewer → inconclusive
#         min_stable_requests: stable requests the comparison needs (compare: stable only;
#                              at least min_requests, the default); fewer anywhere → inconclusive
#         higher_is_better:    optional; false for error_rate/latency, true for score:<name>
#     failure_limit: 1         consecutive failing analyses before an automatic rollback (>= 1); a
#                              failing candidate is rolled back without waiting for the dwell
#     on_inconclusive: hold    hold | rollback: what to do when the dwell is over but a rule still
#                              has too few requests (or no data)
#
# A value exactly at a limit passes. At the 100 % step the stable arm serves no traffic: a
# compare: stable rule uses the stable version's figures of an earlier step (skipped if none).
#
# The default canary: 10 % -> 50 % -> 100 %, at least 10 minutes per step; a candidate whose
# error rate exceeds the stable's * 1.5 + 0.01 (both over >= 200 requests), or 5 % whatever the
# stable arm reports, over >= 200 candidate requests is rolled back.

default_plan: canary

floor:
  max_first_share: 10
  min_dwell_s: 300
  max_failure_limit: 3
  error_rate_cap: {max: 0.1, max_min_requests: 1000}

plans:
  canary:
    steps:
      - {share: 10, min_dwell_s: 600}
      - {share: 50, min_dwell_s: 600}
      - {share: 100, min_dwell_s: 600}
    analysis:
      - metric: error_rate
        compare: stable
        max_ratio: 1.5
        max_delta: 0.01
        min_requests: 200
      - {metric: error_rate, compare: absolute, max: 0.05, min_requests: 200}
    failure_limit: 1
    on_inconclusive: hold

  gradual:
    steps:
      - {share: 5, min_dwell_s: 300}
      - {share: 25, min_dwell_s: 300}
      - {share: 50, min_dwell_s: 300}
      - {share: 100, min_dwell_s: 300}
    analysis:
      - {metric: error_rate, compare: stable, max_ratio: 1.5, max_delta: 0.01, min_requests: 200}
      - {metric: latency_p95_ms, compare: stable, max_ratio: 1.5, min_requests: 200}
      - {metric: error_rate, compare: absolute, max: 0.05, min_requests: 200}
    failure_limit: 1
    on_inconclusive: hold
"""
