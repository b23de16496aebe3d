""" "Which adapter served deployment D at time T (and to key K)": the revision effective at T
(index ``(deployment_id, effective_at)``), its versions with digests, the base, the split, and
the arm a key was routed to (recomputed from the revision's salt and hash spec). Who approved
it is added above this package (``registry.traffic.served``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from registry import refs
from registry.access.actor import Actor
from registry.canary.hashing import HASH_SPEC_V1, arm
from registry.deployments import service as deployments
from registry.deployments.repository import deployment_named, revision_at
from registry.errors import BadRequest, NothingServed


def served_revision(
    session: Session, *, actor: Actor, deployment: str, at: datetime, key: str | None
) -> tuple[dict[str, Any], uuid.UUID | None]:
    """The answer of served-at-T without its promotion (``"promotion": None``), and the id of
    the promotion behind the revision (None: none). Core rows only, two statements."""
    if at.tzinfo is None:
        raise BadRequest("at needs a time zone (e.g. 2026-11-25T10:00:00Z)")
    refs.deployment_name(deployment)
    conn = session.connection()  # Core rows only: no ORM execution layer per statement
    dep = deployment_named(conn, deployment)
    deployments.authorize(actor, deployment, None if dep is None else dep.namespace)
    assert dep is not None
    row = revision_at(conn, dep.id, at)
    if row is None:
        raise NothingServed(
            "the deployment had no revision at that time",
            context={"deployment": deployment, "at": at.isoformat()},
        )
    prefix = f"{dep.namespace}/{dep.adapter}"
    stable = _version(prefix, row.stable_version, row.stable_digest)
    candidate = _version(prefix, row.candidate_version, row.candidate_digest)
    out: dict[str, Any] = {
        "deployment": dep.name,
        "at": at,
        "revision": row.revision,
        "effective_at": row.effective_at,
        "reason": row.reason,
        "stable": stable,
        "candidate": candidate,
        "share_bp": row.candidate_share_bp if candidate is not None else 0,
        "salt": row.salt,
        "hash_spec": row.hash_spec,
        "base": {
            "ref": f"{dep.base_name}@{dep.base_revision}",
            "manifest_digest": dep.manifest_digest,
        },
        "promotion": None,  # filled in by registry.traffic.served
        "key": key,
        "arm": None,
    }
    if key is not None and candidate is not None:
        out["arm"] = _split(row.hash_spec, row.salt, row.candidate_share_bp, key)
    elif key is not None and stable is not None:
        out["arm"] = "stable"
    return out, row.promotion_id


def _version(prefix: str, version: int | None, digest: str | None) -> dict[str, Any] | None:
    if version is None:
        return None
    return {"version": version, "ref": f"{prefix}@v{version}", "digest": digest}


def _split(hash_spec: str, salt: str, share_bp: int, key: str) -> str:
    if hash_spec != HASH_SPEC_V1:
        raise BadRequest("unknown hash spec", context={"hash_spec": hash_spec})
    try:
        return arm(salt, key, share_bp)
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
