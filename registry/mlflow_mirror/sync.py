"""Re-assert one binding's whole state in MLflow (no transaction held): per arm, read the
alias, tell a drift from what the mirror last set, put the alias where the revision says (or
delete the candidate's when there is none), and tag the version.

Drift reasons: ``alias_moved`` (the alias points somewhere other than where the mirror last
left it: someone moved it by hand; it is put back) and ``no_mlflow_version`` (the adapter
version was not imported from this registered model: its alias is left alone).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from registry.errors import RegistryError
from registry.mlflow_mirror.rest import MirrorRest

TAG_DEPLOYMENT = "registry.deployment"
TAG_REVISION = "registry.revision"
TAG_ROLE = "registry.role"
RETIRED = "retired"


@dataclass(frozen=True, slots=True)
class Arm:
    role: str  # stable | candidate
    alias: str
    adapter_version: int | None  # None: the revision has no such arm
    mlflow_version: str | None  # None: no arm, or no MLflow version behind it


@dataclass(frozen=True, slots=True)
class Plan:
    """What one binding should look like in MLflow now (no ORM objects)."""

    binding_id: uuid.UUID
    updated_at: datetime  # the binding as planned; a binding changed meanwhile is not recorded
    deployment: str
    server: str
    model: str
    revision: int
    arms: tuple[Arm, ...]
    last_set: dict[str, str | None]
    cursor: int


@dataclass(slots=True)
class Outcome:
    last_set: dict[str, str | None]
    drifts: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def _arm(rest: MirrorRest, plan: Plan, arm: Arm, out: Outcome) -> None:
    if arm.adapter_version is not None and arm.mlflow_version is None:
        out.drifts.append(
            {
                "reason": "no_mlflow_version",
                "alias": arm.alias,
                "role": arm.role,
                "adapter_version": arm.adapter_version,
            }
        )
        return
    want = arm.mlflow_version
    found = rest.get_alias(plan.model, arm.alias)
    known = arm.alias in plan.last_set
    if known and found != plan.last_set[arm.alias]:
        expected = plan.last_set[arm.alias]
        out.drifts.append(
            {"reason": "alias_moved", "alias": arm.alias, "expected": expected, "found": found}
        )
    if want is None:
        if found is not None and (arm.role == "candidate" or known):
            rest.delete_alias(plan.model, arm.alias)
        out.last_set[arm.alias] = None
        return
    if found != want:
        rest.set_alias(plan.model, arm.alias, want)
    out.last_set[arm.alias] = want
    for key, value in (
        (TAG_DEPLOYMENT, plan.deployment),
        (TAG_REVISION, str(plan.revision)),
        (TAG_ROLE, arm.role),
    ):
        rest.set_tag(plan.model, want, key, value)


def assert_state(rest: MirrorRest, plan: Plan) -> Outcome:
    """Put ``plan`` into MLflow; an MLflow failure ends the attempt with ``error`` set (what
    was done so far is in ``last_set``, and the next round starts over)."""
    out = Outcome(last_set=dict(plan.last_set))
    try:
        for arm in plan.arms:
            _arm(rest, plan, arm, out)
        current = {a.mlflow_version for a in plan.arms if a.mlflow_version is not None}
        for version in set(plan.last_set.values()) - current:
            if version is not None:  # it held one of our aliases, and holds none now
                rest.set_tag(plan.model, version, TAG_ROLE, RETIRED)
    except RegistryError as exc:
        reason = exc.context.get("reason") if isinstance(exc.context, dict) else None
        out.error = f"{exc.code}: {reason or exc}"[:512]
    return out
