"""From the audit log to deliveries, and the state of each delivery (runs in the worker's
transactions; flushes, never commits).

- :func:`fan_out` walks each enabled subscription's cursor forward over the audit log and adds
  a pending delivery for every event it wants (type, namespace).
- :func:`claim_due` takes, per subscription, the head of its queue (its lowest pending seq) if
  it is due, re-checks that the owner may still read the event's resource (else the delivery
  is ``withheld`` and the next one is looked at), and leases it: ``next_attempt_at`` moves
  ``lease_s`` ahead, so no other replica sends it meanwhile, and a replica that dies mid-send
  leaves it to be retried when the lease ends (at-least-once, same ``webhook_id``).
- :func:`record` writes the outcome: 2xx delivered; 410 disables the subscription (the
  delivery stays pending); anything else is retried after ``backoff_delay``, until the first
  attempt is ``give_up_after_s`` old: then ``failed``, and the queue moves on.

Only the head is ever claimed, and it stays the head until delivered, failed or withheld, so
event N+1 of a subscription is never sent before event N is settled.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from registry.audit import canonical
from registry.audit import service as audit
from registry.audit.models import AuditEvent
from registry.events import resources
from registry.events.catalog import event_type
from registry.events.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from registry.events.repository import DeliveryRepository, SubscriptionRepository
from registry.policy.types import Authorizer
from registry.webhook_settings import WebhookSettings

GONE_REASON = "the receiver answered 410 Gone"
_WEBHOOK_ID_NS = uuid.UUID("5b0d6c9e-8f7a-4f7e-9d2b-1f3c0a6e4b21")


def webhook_id(subscription_id: uuid.UUID, seq: int) -> str:
    """Stable per (subscription, event): every retry and redelivery carries it."""
    return "msg_" + uuid.uuid5(_WEBHOOK_ID_NS, f"{subscription_id}:{seq}").hex


def backoff_delay(attempts: int, settings: WebhookSettings) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: 5, 10, 20... capped."""
    exponent = min(max(attempts - 1, 0), 32)
    return float(min(settings.backoff_base_s * 2**exponent, settings.backoff_max_s))


def payload(type_: str, event: AuditEvent) -> bytes:
    """The JSON body (compact, keys sorted: the same bytes on every attempt)."""
    doc: dict[str, Any] = {
        "type": type_,
        "timestamp": canonical.format_timestamp(event.at),
        "audit_seq": event.seq,
        "audit_hash": event.hash,
        "data": {
            "action": event.action,
            "resource": event.resource,
            "actor": event.actor,
            "details": event.after,
            "before": event.before,
        },
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def _wants(
    session: Session, sub: WebhookSubscription, type_: str, event: AuditEvent, cache: dict[str, Any]
) -> bool:
    if type_ not in sub.event_types:
        return False
    if sub.namespace is None:
        return True
    if event.resource not in cache:
        cache[event.resource] = resources.namespace_of(session, event.resource)
    return bool(cache[event.resource] == sub.namespace)


def has_work(session: Session, *, now: datetime) -> bool:
    """Whether a round would do anything: a subscription behind the audit head, or a due
    delivery. Read-only, so idle rounds never take the write lock (SQLite's is global)."""
    if SubscriptionRepository(session).any_behind(audit.head(session).seq):
        return True
    return DeliveryRepository(session).any_due(now)


def fan_out(session: Session, *, now: datetime, batch: int) -> int:
    """Add the deliveries of audit events past each enabled subscription's cursor (at most
    ``batch`` events per call); the number of deliveries added."""
    subs = SubscriptionRepository(session).enabled(for_update=True)
    if not subs:
        return 0
    start = min(s.cursor for s in subs)
    events = audit.log(session, after_seq=start, limit=min(batch, audit.MAX_LOG_LIMIT))
    if not events:
        return 0
    deliveries, added = DeliveryRepository(session), 0
    cache: dict[str, Any] = {}
    typed = [(e, event_type(e.action, e.after)) for e in events]
    last = events[-1].seq
    for sub in subs:
        for event, type_ in typed:
            if event.seq <= sub.cursor or type_ is None:
                continue
            if _wants(session, sub, type_, event, cache):
                deliveries.add(
                    WebhookDelivery(
                        subscription_id=sub.id,
                        audit_seq=event.seq,
                        event_type=type_,
                        webhook_id=webhook_id(sub.id, event.seq),
                        status=DeliveryStatus.pending,
                        attempts=0,
                        next_attempt_at=now,
                    )
                )
                added += 1
        sub.cursor = max(sub.cursor, last)
    session.flush()
    return added


@dataclass(frozen=True, slots=True)
class Claim:
    """One leased delivery, with everything the send needs (no ORM objects)."""

    delivery_id: uuid.UUID
    subscription_id: uuid.UUID
    attempts: int
    url: str
    secrets: tuple[str, ...]
    webhook_id: str
    body: bytes


def _event(session: Session, seq: int) -> AuditEvent | None:
    found = audit.log(session, after_seq=seq - 1, limit=1)
    return found[0] if found and found[0].seq == seq else None


def _secrets(sub: WebhookSubscription, now: datetime) -> tuple[str, ...]:
    expires = sub.previous_secret_expires_at
    if sub.previous_secret and expires is not None and expires > now:
        return (sub.secret, sub.previous_secret)
    return (sub.secret,)


def _claim_head(
    session: Session, sub: WebhookSubscription, now: datetime, lease_s: float, authz: Authorizer
) -> Claim | None:
    repo = DeliveryRepository(session)
    while (head := repo.head(sub.id)) is not None and head.next_attempt_at <= now:
        event = _event(session, head.audit_seq)
        owner = resources.owner_actor(session, sub.owner_id, authz)
        if event is None or owner is None or not resources.may_read(session, owner, event.resource):
            head.status = DeliveryStatus.withheld
            head.last_error = "the subscription's owner may not read this event's resource"
            session.flush()
            continue
        head.attempts += 1
        head.first_attempt_at = head.first_attempt_at or now
        head.last_attempt_at = now
        head.next_attempt_at = now + timedelta(seconds=lease_s)
        session.flush()
        return Claim(
            delivery_id=head.id,
            subscription_id=sub.id,
            attempts=head.attempts,
            url=sub.url,
            secrets=_secrets(sub, now),
            webhook_id=head.webhook_id,
            body=payload(head.event_type, event),
        )
    return None


def claim_due(
    session: Session, *, now: datetime, lease_s: float, authorizer: Authorizer
) -> list[Claim]:
    """Lease the due head delivery of every enabled subscription (at most one each)."""
    claims = []
    for sub in SubscriptionRepository(session).enabled(for_update=True):
        claim = _claim_head(session, sub, now, lease_s, authorizer)
        if claim is not None:
            claims.append(claim)
    return claims


def record(
    session: Session,
    claim: Claim,
    *,
    status_code: int | None,
    error: str | None,
    now: datetime,
    settings: WebhookSettings,
) -> str | None:
    """Write the outcome of a claimed attempt; the delivery's new status, or None when the
    claim was overtaken (redelivered, or its lease ended and another attempt took it)."""
    row = DeliveryRepository(session).get(claim.delivery_id, for_update=True)
    if row is None or row.status != DeliveryStatus.pending or row.attempts != claim.attempts:
        return None
    row.last_status_code = status_code
    row.last_error = error[:512] if error else None
    if status_code is not None and 200 <= status_code < 300:
        row.status = DeliveryStatus.delivered
        row.delivered_at = now
    elif status_code == 410:
        sub = SubscriptionRepository(session).get(claim.subscription_id, for_update=True)
        if sub is not None:
            sub.enabled = False
            sub.disabled_reason = GONE_REASON
        row.next_attempt_at = now
    else:
        first = row.first_attempt_at or now
        if (now - first).total_seconds() >= settings.give_up_after_s:
            row.status = DeliveryStatus.failed
        else:
            row.next_attempt_at = now + timedelta(seconds=backoff_delay(row.attempts, settings))
    session.flush()
    return str(row.status)
