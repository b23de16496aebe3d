"""Webhook subscriptions as the API manages them (inside the caller's transaction; flushes).

Authorization: ``manage_webhooks`` on the subscription's namespace (``Namespace`` resource),
or on the ``Registry`` for a subscription without a namespace filter. A subscription the caller
may not manage is "not found" to it (404 before 403), unless it is the caller's own.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from registry import refs
from registry.access.actor import Actor, namespace_resource, registry_resource
from registry.audit import service as audit
from registry.errors import UnknownEventType, WebhookDeliveryNotFound, WebhookNotFound
from registry.events import signing
from registry.events.catalog import EVENT_TYPES, unknown_types
from registry.events.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from registry.events.repository import DeliveryRepository, SubscriptionRepository
from registry.events.targets import AllowList, Resolver, checked_addresses, parse_url
from registry.policy.types import Resource

ACTION = "manage_webhooks"


def _resource(namespace: str | None) -> Resource:
    return namespace_resource(namespace) if namespace else registry_resource()


def create_subscription(
    session: Session,
    *,
    actor: Actor,
    url: str,
    event_types: list[str],
    namespace: str | None,
    allow: AllowList,
    resolver: Resolver,
) -> tuple[WebhookSubscription, str]:
    """Create a subscription and its first secret (returned once). It receives the events
    committed after it. Raises ``invalid_webhook_url``, ``webhook_target_blocked`` (the host is
    or resolves to a non-public address the allow-list does not permit), ``unknown_event_type``,
    ``policy_denied``."""
    if namespace is not None:
        refs.namespace_name(namespace)
    actor.require(ACTION, _resource(namespace))
    unknown = unknown_types(event_types)
    if unknown:
        raise UnknownEventType(
            f"unknown event types: {', '.join(unknown)}",
            context={"unknown": unknown, "known": list(EVENT_TYPES)},
        )
    checked_addresses(parse_url(url), allow, resolver)
    secret = signing.new_secret()
    row = SubscriptionRepository(session).add(
        WebhookSubscription(
            url=url,
            event_types=sorted(set(event_types), key=EVENT_TYPES.index),
            namespace=namespace,
            owner_id=actor.id,
            secret=secret,
            enabled=True,
            cursor=0,
        )
    )
    actor.audit(
        session,
        "webhook.create",
        f"webhook:{row.id}",
        after={"url": url, "event_types": row.event_types, "namespace": namespace},
    )
    # Events from here on: the head includes this transaction's own events (it holds the lock).
    row.cursor = audit.head(session).seq
    session.flush()
    return row, secret


def _visible(
    session: Session, actor: Actor, sub_id: uuid.UUID, *, manage: bool = False
) -> WebhookSubscription:
    row = SubscriptionRepository(session).get(sub_id, for_update=manage)
    missing = WebhookNotFound("no such webhook", context={"id": str(sub_id)})
    if row is None:
        raise missing
    resource = _resource(row.namespace)
    # Hidden from whoever neither owns it nor may manage webhooks where it is (404 before 403;
    # the Registry itself is readable by all, so ``require(hidden=...)`` alone would not hide).
    if row.owner_id != actor.id and not actor.decide(ACTION, resource).allowed:
        raise missing
    if manage:
        actor.require(ACTION, resource, hidden=missing)
    return row


def get_subscription(session: Session, *, actor: Actor, sub_id: uuid.UUID) -> WebhookSubscription:
    """One subscription (its owner, or whoever may manage webhooks where it is)."""
    return _visible(session, actor, sub_id)


def list_subscriptions(
    session: Session, *, actor: Actor, before: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[WebhookSubscription]:
    """Newest first: the caller's own, or everyone's for whoever manages registry-wide ones."""
    everyone = actor.decide(ACTION, registry_resource()).allowed
    return SubscriptionRepository(session).listing(
        owner_id=None if everyone else actor.id, before=before, limit=limit
    )


def disable_subscription(
    session: Session, *, actor: Actor, sub_id: uuid.UUID, reason: str | None
) -> WebhookSubscription:
    """Stop sending (pending deliveries stay pending; nothing new is fanned out)."""
    row = _visible(session, actor, sub_id, manage=True)
    row.enabled = False
    row.disabled_reason = reason or f"disabled by {actor.name}"
    actor.audit(session, "webhook.disable", f"webhook:{row.id}", after={"reason": reason})
    session.flush()
    return row


def rotate_secret(
    session: Session, *, actor: Actor, sub_id: uuid.UUID, grace_s: int
) -> tuple[WebhookSubscription, str]:
    """A new secret (returned once); the old one keeps signing for ``grace_s`` seconds."""
    row = _visible(session, actor, sub_id, manage=True)
    secret = signing.new_secret()
    row.previous_secret = row.secret if grace_s > 0 else None
    row.previous_secret_expires_at = (
        datetime.now(UTC) + timedelta(seconds=grace_s) if grace_s > 0 else None
    )
    row.secret = secret
    actor.audit(session, "webhook.rotate_secret", f"webhook:{row.id}", after={"grace_s": grace_s})
    session.flush()
    return row, secret


def list_deliveries(
    session: Session,
    *,
    actor: Actor,
    sub_id: uuid.UUID,
    status: str | None,
    before_seq: int | None,
    limit: int,
) -> list[WebhookDelivery]:
    """A subscription's deliveries (of one status), newest event first."""
    row = _visible(session, actor, sub_id)
    return DeliveryRepository(session).listing(
        row.id, status=status, before_seq=before_seq, limit=limit
    )


def redeliver(
    session: Session, *, actor: Actor, sub_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery:
    """Send a delivery again, as soon as it is the head of its queue (same ``webhook_id``);
    a failed or withheld one is retried afresh (its give-up window restarts)."""
    sub = _visible(session, actor, sub_id, manage=True)
    row = DeliveryRepository(session).get(delivery_id, for_update=True)
    if row is None or row.subscription_id != sub.id:
        raise WebhookDeliveryNotFound("no such delivery", context={"id": str(delivery_id)})
    row.status = DeliveryStatus.pending
    row.next_attempt_at = datetime.now(UTC)
    row.first_attempt_at = None
    actor.audit(
        session,
        "webhook.redeliver",
        f"webhook:{sub.id}",
        after={"delivery": str(row.id), "audit_seq": row.audit_seq},
    )
    session.flush()
    return row
