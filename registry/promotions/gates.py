"""Promotion gates against the database: the evaluations of a candidate and of the deployment's
stable version, judged by the active ``gates.yaml`` (``registry.policy.gates``).

Gates run when a promotion is requested (stored with the request) and again at every approval,
against the stable version then and the evaluations and gates policy then: a request approved
a week later is judged on what is true at approval (``gates_failed`` otherwise).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from registry.access.policy_sets import ActivePolicies
from registry.catalog.evaluations import evaluations_on_base
from registry.catalog.models import AdapterVersion
from registry.deployments.models import Deployment
from registry.errors import GatesFailed
from registry.policy.gates import EvalPoint, GateResult, evaluate_gates
from registry.policy.gates_config import GateConfig
from registry.promotions.models import PromotionRequest


def points(session: Session, version_id: uuid.UUID, base_version_id: uuid.UUID) -> list[EvalPoint]:
    """Every evaluation of ``version_id`` on the deployment's base model version."""
    rows = evaluations_on_base(session, version_id=version_id, base_version_id=base_version_id)
    return [
        EvalPoint(
            suite=e.suite,
            metric=e.metric,
            value=e.value,
            higher_is_better=e.higher_is_better,
            dataset_digest=e.dataset_digest,
            recorded_at=e.created_at,
        )
        for e in rows
    ]


def evaluate(
    session: Session,
    policies: ActivePolicies,
    *,
    deployment: Deployment,
    namespace: str,
    version: AdapterVersion,
    stable_version_id: uuid.UUID | None,
) -> tuple[GateConfig, list[GateResult]]:
    """The target's gate configuration and every gate's result for ``version`` against
    ``stable_version_id`` (None: a first promotion). Reads only."""
    cfg = policies.gates.for_target(namespace, deployment.name)
    base = deployment.base_model_version_id
    stable = points(session, stable_version_id, base) if stable_version_id is not None else None
    results = evaluate_gates(
        cfg,
        version_state=version.state,
        candidate=points(session, version.id, base),
        stable=stable,
    )
    return cfg, results


def require_gates_at_approval(
    session: Session,
    policies: ActivePolicies,
    *,
    row: PromotionRequest,
    deployment: Deployment,
    namespace: str,
    stable_version_id: uuid.UUID | None,
) -> list[GateResult]:
    """Run the gates again for an approval, against ``stable_version_id`` (the deployment's
    stable version now); ``gates_failed`` (409) listing every failing gate.

    An admin's override at request time excuses the gates that failed then, not a gate that
    fails only now."""
    version = session.get_one(AdapterVersion, row.adapter_version_id)
    _, results = evaluate(
        session,
        policies,
        deployment=deployment,
        namespace=namespace,
        version=version,
        stable_version_id=stable_version_id,
    )
    excused = (
        {str(g.get("name")) for g in row.gates if not g.get("passed")}
        if row.override_reason
        else set()
    )
    failing = [g for g in results if not g.passed and g.name not in excused]
    if failing:
        detail: dict[str, Any] = {
            "id": str(row.id),
            "failed_gates": [g.name for g in failing],
            "gates": [g.to_dict() for g in failing],
            "policy_digest": policies.bundle.digest,
        }
        raise GatesFailed("the promotion's gates fail now; it cannot be approved", context=detail)
    return results
