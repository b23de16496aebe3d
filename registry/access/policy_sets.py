"""Versioned policy sets: which Cedar policies and gates are active, applying a new set.

The active set is the highest ``policy_sets.version``; version 0 means "the defaults shipped in
``registry/policies/``" (nothing applied yet). Every process keeps the parsed set in a
``PolicyHolder`` and compares versions (one indexed ``max()``) at most once per ``recheck_s``
(1 s), so ``policies apply`` takes effect at once on the replica that applied it and within a
second on every other one, without a query per request.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.access.actor import Actor, policy_resource
from registry.access.models import PolicySet
from registry.canary.plans import PlansFile, parse_plans
from registry.errors import Conflict
from registry.policy.engine import CedarAuthorizer
from registry.policy.gates_config import GatesFile, parse_gates
from registry.policy.loader import (
    PolicyBundle,
    default_rollout_text,
    from_texts,
    load_dir,
    validate,
)
from registry.policy.types import Authorizer


@dataclass(frozen=True)
class ActivePolicies:
    version: int
    bundle: PolicyBundle
    authorizer: Authorizer
    gates: GatesFile
    plans: PlansFile
    applied_by: str | None = None
    applied_at: datetime | None = None
    source: str = ""


def compile_bundle(
    bundle: PolicyBundle, version: int, *, stored: bool = False, **meta: object
) -> ActivePolicies:
    """Validate and parse ``bundle``. ``stored``: a set applied earlier, loaded under the rules
    it was applied with where newer rollout-plan rules would refuse it (its plans below the
    floor are refused when a promotion is requested instead; see ``registry.canary.plans``)."""
    validate(bundle, stored=stored)
    return ActivePolicies(
        version=version,
        bundle=bundle,
        authorizer=CedarAuthorizer(bundle, stored=stored),
        gates=parse_gates(bundle.gates_text),
        plans=parse_plans(bundle.rollout_text or default_rollout_text(), stored=stored),
        **meta,  # type: ignore[arg-type]
    )


class PolicyHolder:
    """The parsed active policy set of this process, reloaded when the database moves on."""

    def __init__(self, default_dir: Path, *, recheck_s: float = 1.0) -> None:
        self._default_dir = default_dir
        self._recheck_s = recheck_s
        self._lock = threading.Lock()
        self._active: ActivePolicies | None = None
        self._checked_at = float("-inf")

    def current(self, session: Session) -> ActivePolicies:
        active = self._active
        now = time.monotonic()
        if active is not None and now - self._checked_at < self._recheck_s:
            return active
        version = session.scalar(select(func.max(PolicySet.version))) or 0
        self._checked_at = now
        if active is not None and active.version == version:
            return active
        with self._lock:
            if self._active is not None and self._active.version == version:
                return self._active
            self._active = self._load(session, version)
            return self._active

    def activate(self, active: ActivePolicies) -> None:
        """Use ``active`` from now on (the set this process just applied)."""
        with self._lock:
            if self._active is None or active.version > self._active.version:
                self._active = active

    def _load(self, session: Session, version: int) -> ActivePolicies:
        if version == 0:
            return compile_bundle(load_dir(self._default_dir), 0, source=str(self._default_dir))
        row = session.scalars(select(PolicySet).where(PolicySet.version == version)).one()
        bundle = from_texts(row.schema_text, row.policies_text, row.gates_text, row.rollout_text)
        return compile_bundle(
            bundle, version, stored=True, applied_at=row.created_at, source=row.source
        )


def apply(
    session: Session, actor: Actor, holder: PolicyHolder, *, bundle: PolicyBundle, source: str
) -> ActivePolicies:
    """Validate ``bundle`` and make it the active policy set (a new version; audited)."""
    actor.require("manage_policies", policy_resource())
    current = holder.current(session)
    compiled = compile_bundle(bundle, current.version + 1, source=source)
    row = PolicySet(
        version=compiled.version,
        digest=bundle.digest,
        schema_text=bundle.schema_text,
        policies_text=bundle.policies_text,
        gates_text=bundle.gates_text,
        rollout_text=bundle.rollout_text,
        source=source[:1024],
        applied_by_id=actor.id,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(
            "another policy set was applied at the same time; retry",
            context={"version": compiled.version},
        ) from exc
    # This process uses the new set as soon as it is committed (others within recheck_s).
    event.listen(session, "after_commit", lambda _s: holder.activate(compiled), once=True)
    actor.audit(
        session,
        "policy.apply",
        f"policy_set:v{compiled.version}",
        before={"version": current.version, "digest": current.bundle.digest},
        after={"version": compiled.version, "digest": bundle.digest, "source": source[:200]},
    )
    return compiled
