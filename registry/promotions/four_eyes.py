"""Separation of duties on approvals ("four eyes"): the approver of a promotion request is
neither its requester, nor the version's registrant, nor the owner of the CI identity that
registered it.

Enforced three times, so a bug in one layer fails closed: here (``separation_of_duties``
naming the rule), in the Cedar policy ``four-eyes-never-own``, and by the CHECK constraints
on ``promotion_approvals`` (see ``registry.promotions.models``), whose violation is reported
the same way.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.access.actor import Actor
from registry.errors import Conflict, SeparationOfDuties
from registry.promotions.models import PromotionApproval, PromotionRequest
from registry.promotions.reads import resource

FOUR_EYES_POLICY = "four-eyes-never-own"
FOUR_EYES_CONSTRAINTS = (
    "ck_promotion_approvals_not_requester_nor_registrant",
    "ck_promotion_approvals_not_ci_identity_owner",
)


def require_four_eyes(actor: Actor, row: PromotionRequest, namespace: str) -> None:
    if actor.id == row.requested_by_id:
        raise separation(actor, row, "requester", "the approver requested this promotion")
    if actor.id == row.registered_by_id:
        raise separation(actor, row, "registrant", "the approver registered this version")
    if row.ci_actor and row.ci_actor in actor.subject.ci_identities:
        raise separation(
            actor, row, "ci_identity_owner", "the approver owns the CI identity that registered it"
        )
    decision = actor.decide("approve", resource(row, namespace))
    if not decision.allowed and FOUR_EYES_POLICY in decision.policies:
        raise separation(actor, row, "policy", "the four-eyes policy forbids this approval")


def separation(actor: Actor, row: PromotionRequest, rule: str, detail: str) -> SeparationOfDuties:
    error = SeparationOfDuties(
        f"separation of duties: {detail}",
        context={
            "id": str(row.id),
            "rule": rule,
            "policy": FOUR_EYES_POLICY,
            "constraints": list(FOUR_EYES_CONSTRAINTS),
        },
    )
    error.audit_entry = actor.entry(
        "authz.denied",
        f"promotion:{row.id}",
        decision={"allowed": False, "action": "approve", "policies": [FOUR_EYES_POLICY]},
        after={"rule": rule},
    )
    return error


def add_approval(session: Session, actor: Actor, row: PromotionRequest, comment: str) -> int:
    """Store ``actor``'s approval of ``row`` (``separation_of_duties`` when a constraint
    refuses it, ``conflict`` when ``actor`` approved it already); return the approvals now."""
    approval = PromotionApproval(
        request_id=row.id,
        approver_id=actor.id,
        requester_id=row.requested_by_id,
        registrant_id=row.registered_by_id,
        approver_ci_identity=next(iter(actor.subject.ci_identities), None),
        registrant_ci_actor=row.ci_actor,
        comment=comment[:2000],
    )
    try:
        with session.begin_nested():
            session.add(approval)
            session.flush()
    except IntegrityError as exc:
        text = str(exc.orig)
        if any(c in text for c in FOUR_EYES_CONSTRAINTS):
            raise separation(actor, row, "constraint", text[:200]) from exc
        raise Conflict("you approved this request already", context={"id": str(row.id)}) from exc
    count = session.scalar(
        select(func.count())
        .select_from(PromotionApproval)
        .where(PromotionApproval.request_id == row.id)
    )
    return count or 0
