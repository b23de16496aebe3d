"""The end of a direct upload's verification: a ``verifying`` version becomes ``validated`` once
the server has hashed every direct file, or ``quarantined`` with the reason when one does not
hash to its declared digest (or is gone).

The hashing itself is the verification job's (``registry.jobs.verify``): it streams each staged
object off the request path and publishes it under its digest only when it matches. This module
only moves the version, records the outcome in its validation report and audits it.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from registry.audit.service import AuditEntry, append
from registry.catalog.models import Adapter, AdapterVersion, Namespace, VersionState
from registry.catalog.mutations import transition
from registry.catalog.queries import VersionContext
from registry.errors import VersionNotFound

#: Who the audit log names for the outcome of a verification.
ACTOR = "system:verify"


def finish_verification(
    session: Session, *, version_id: uuid.UUID, problem: dict[str, Any] | None
) -> VersionContext | None:
    """Move the version out of ``verifying``: ``validated`` when ``problem`` is None, else
    ``quarantined`` with ``problem`` (``{"reason", "file", ...}``) kept in its validation
    report. None when it is no longer ``verifying`` (a retried job that already finished it).
    Runs in the caller's transaction; flushes; audited (``adapter.version.verify``).
    """
    version = session.get(AdapterVersion, version_id, with_for_update=True)
    if version is None:
        raise VersionNotFound("no such adapter version", context={"id": str(version_id)})
    if version.state != VersionState.verifying:
        return None
    adapter = session.get_one(Adapter, version.adapter_id)
    namespace = session.get_one(Namespace, adapter.namespace_id)
    ctx = VersionContext(namespace, adapter, version)
    to = VersionState.validated if problem is None else VersionState.quarantined
    transition(session, ctx=ctx, to=to)
    outcome: dict[str, Any] = {"verified": problem is None}
    if problem is not None:
        outcome.update(problem)
    version.validation_report = {**(version.validation_report or {}), "verification": outcome}
    session.flush()
    append(
        session,
        AuditEntry(
            action="adapter.version.verify",
            resource=f"adapter:{ctx.ref}",
            actor=ACTOR,
            before={"state": VersionState.verifying},
            after={"state": to, **({"problem": problem} if problem else {})},
        ),
    )
    return ctx
