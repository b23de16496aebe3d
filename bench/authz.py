"""Authorization decision rate and latency of ``CedarAuthorizer`` (in-process, single thread).

Timed with the shipped default policy set (``registry/policies/``):

- single ``authorize`` calls for a typical request (a developer in 3 namespaces:
  ``register_version`` on an adapter in a member namespace), an approver's ``approve`` on a
  promotion (both forbids evaluated) and a developer with 1,000 memberships; per-call latency
  p50/p95/p99 in µs and decisions/s (the principal's parsed entity is cached per subject, as in
  a server where the same caller keeps coming back);
- ``allowed_namespaces`` over 1,000 namespaces (one ``is_authorized_batch`` call): decisions/s
  and ms per call;
- for reference, the raw ``cedarpy.is_authorized`` on the same entity slice with and without the
  parsed ``Schema`` handle at request time (why the engine passes no schema per request);
- start-up: validating and parsing the policy set (``CedarAuthorizer(load_default())``).

    python -m bench.authz [--quick]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from bench._common import mark, parse_args, percentile, print_table, wait_for_quiet, write_json

if TYPE_CHECKING:
    from registry.policy import PolicyBundle, Resource, Subject

NAME = "authz"
TARGET_P95_US = 1000.0  # our own bar: a decision must be negligible next to a DB round trip
NAMESPACES = 1_000


def time_each(fn: Callable[[], Any], n: int, warmup: int = 200) -> list[float]:
    """Seconds per call for ``n`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    out = []
    clock = time.perf_counter
    for _ in range(n):
        t0 = clock()
        fn()
        out.append(clock() - t0)
    return out


def summary(label: str, seconds: Sequence[float], per_call: int = 1) -> dict[str, Any]:
    us = [s * 1e6 for s in seconds]
    return {
        "case": label,
        "calls": len(us),
        "decisions_per_call": per_call,
        "decisions_per_s": per_call * len(us) / sum(seconds),
        "p50_us": percentile(us, 50),
        "p95_us": percentile(us, 95),
        "p99_us": percentile(us, 99),
        "p50_us_per_decision": percentile(us, 50) / per_call,
    }


def raw_cedarpy(
    bundle: PolicyBundle, dev: Subject, adapter: Resource, n_single: int
) -> list[dict[str, Any]]:
    """Raw cedarpy on the same slice: the engine's overhead and the cost of request-time
    schema."""
    import cedarpy

    from registry.policy.engine import entities, entities_json

    policies = cedarpy.PolicySet.from_str(bundle.policies_text)
    schema = cedarpy.Schema.from_str(bundle.schema_text)
    request = {
        "principal": {"type": "Principal", "id": dev.id},
        "action": {"type": "Action", "id": "register_version"},
        "resource": {"type": "Adapter", "id": adapter.id},
        "context": {},
    }
    as_json = entities_json(dev, adapter)
    handle = entities(dev, adapter)
    check = cedarpy.is_authorized(request, policies, as_json, schema)
    assert check.allowed, check.diagnostics.errors

    def raw(slice_: str | cedarpy.Entities, schema_arg: cedarpy.Schema | None) -> Callable[[], Any]:
        return lambda: cedarpy.is_authorized(request, policies, slice_, schema_arg)

    return [
        summary(f"raw cedarpy: {label} (reference)", time_each(call, n_single))
        for label, call in (
            ("slice as JSON text, no schema", raw(as_json, None)),
            ("slice as JSON text, Schema handle", raw(as_json, schema)),
            ("prebuilt Entities handle, no schema", raw(handle, None)),
            ("prebuilt Entities handle, Schema handle", raw(handle, schema)),
        )
    ]


def report(
    digest: str, policies: int, startup_ms: float, results: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Print the table and write the JSON; return the checks."""
    typical = results[0]
    ok = typical["p95_us"] < TARGET_P95_US
    rows = [
        [
            r["case"],
            r["calls"],
            round(r["decisions_per_s"]),
            round(r["p50_us"], 1),
            round(r["p95_us"], 1),
            round(r["p99_us"], 1),
            round(r["p50_us_per_decision"], 2),
        ]
        for r in results
    ]
    print(
        f"\npolicy set {digest[:19]}…: {policies} policies; "
        f"start-up (validate + parse) {startup_ms:.1f} ms"
    )
    print_table(
        "Authorization decisions (single thread, µs per call)",
        ["case", "calls", "decisions/s", "p50", "p95", "p99", "p50 µs/decision"],
        rows,
    )
    print(f"typical decision p95 < {TARGET_P95_US:g} µs: {mark(ok)}")
    checks = [
        {
            "name": "authorize p95 (developer register_version)",
            "value": round(typical["p95_us"], 1),
            "target": f"< {TARGET_P95_US:g} µs",
            "ok": ok,
        }
    ]
    write_json(
        NAME,
        {
            "policies": policies,
            "policy_digest": digest,
            "startup_ms": startup_ms,
            "results": results,
            "checks": checks,
        },
    )
    return checks


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from registry.policy import CedarAuthorizer, Resource, Subject, load_default

    args = parse_args(__doc__ or NAME, argv)
    wait_for_quiet()
    n_single = 5_000 if args.quick else 50_000
    n_batch = 20 if args.quick else 200

    t0 = time.perf_counter()
    bundle = load_default()
    authz = CedarAuthorizer(bundle)
    startup_ms = (time.perf_counter() - t0) * 1000

    member_of = frozenset(f"team-{i:04d}" for i in range(0, NAMESPACES, 10))
    dev = Subject("0d6f3c1e-dev", "dev", "human", "developer", frozenset({"acme", "ml", "nlp"}))
    big = Subject(
        "0d6f3c1e-big",
        "big",
        "human",
        "developer",
        frozenset(f"team-{i:04d}" for i in range(NAMESPACES)) | {"acme"},
    )
    lister = Subject("0d6f3c1e-list", "list", "human", "viewer", member_of)
    approver = Subject("0d6f3c1e-appr", "appr", "human", "approver", frozenset({"acme"}))
    adapter = Resource("Adapter", "7f1c2a90-adapter", "acme")
    promo = Resource(
        "Promotion",
        "7f1c2a90-promo",
        "acme",
        {"requested_by": "u-req", "registered_by": "u-reg", "ci_actor": "ci-bot"},
    )
    namespaces = [f"team-{i:04d}" for i in range(NAMESPACES)]

    assert authz.authorize(dev, "register_version", adapter).allowed
    assert authz.authorize(approver, "approve", promo).allowed
    assert authz.authorize(big, "register_version", adapter).allowed
    assert len(authz.allowed_namespaces(lister, "read", namespaces)) == len(member_of)

    results = [
        summary(
            "authorize: developer register_version",
            time_each(lambda: authz.authorize(dev, "register_version", adapter), n_single),
        ),
        summary(
            "authorize: approver approve (forbids evaluated)",
            time_each(lambda: authz.authorize(approver, "approve", promo), n_single),
        ),
        summary(
            f"authorize: developer with {NAMESPACES + 1:,} memberships",
            time_each(lambda: authz.authorize(big, "register_version", adapter), n_single),
        ),
        summary(
            f"allowed_namespaces: read x {NAMESPACES:,} (member of 100)",
            time_each(lambda: authz.allowed_namespaces(lister, "read", namespaces), n_batch, 5),
            per_call=NAMESPACES,
        ),
    ]

    results += raw_cedarpy(bundle, dev, adapter, n_single)
    checks = report(bundle.digest, len(authz.policy_ids), startup_ms, results)
    return {"name": NAME, "checks": checks}


if __name__ == "__main__":
    main()
