""" "Which adapter served deployment D at time T (and to key K), who approved it": the
revision effective then, with its versions, base, split and the arm of ``key``
(``registry.deployments.served``), and the promotion behind it with its requester and approvers
(``registry.promotions.reads.approval_record``). Three statements whatever the history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from registry.access.actor import Actor
from registry.deployments.served import served_revision
from registry.promotions.reads import approval_record


def served_at(
    session: Session, *, actor: Actor, deployment: str, at: datetime, key: str | None
) -> dict[str, Any]:
    out, promotion_id = served_revision(session, actor=actor, deployment=deployment, at=at, key=key)
    out["promotion"] = approval_record(session, promotion_id)
    return out
