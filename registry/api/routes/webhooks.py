"""Webhooks: signed notifications of registry events (docs/events.md)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query, status

from registry import errors
from registry.api.deps import ActorDep, SessionDep, SettingsDep, WriteDep
from registry.api.pagination import Page, decode_time_token, decode_token, page_of, time_key
from registry.api.routes._common import PageDep, authenticated_router, responses
from registry.events import service as webhooks
from registry.events.models import DeliveryStatus, WebhookSubscription
from registry.events.schemas import (
    DeliveryRead,
    SecretRotate,
    WebhookCreate,
    WebhookDisable,
    WebhookRead,
    WebhookWithSecret,
)
from registry.events.targets import AllowList, system_resolver

router = authenticated_router(prefix="/api/v1/webhooks", tags=["webhooks"])

_NOT_FOUND = responses(errors.WebhookNotFound, errors.PolicyDenied)


def _with_secret(row: WebhookSubscription, secret: str) -> WebhookWithSecret:
    return WebhookWithSecret(**WebhookRead.model_validate(row).model_dump(), secret=secret)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookWithSecret,
    responses=responses(
        errors.InvalidWebhookUrl,
        errors.WebhookTargetBlocked,
        errors.UnknownEventType,
        errors.PolicyDenied,
    ),
)
def create_webhook(body: WebhookCreate, ctx: WriteDep, settings: SettingsDep) -> object:
    """Subscribe a URL to event types (of one namespace, or everywhere: admins). Answers the
    signing secret (``whsec_...``) once. The URL's host must be a public address (or allowed by
    ``REGISTRY_WEBHOOKS__ALLOW_PRIVATE_TARGETS``); events committed from now on are sent."""

    def produce() -> WebhookWithSecret:
        row, secret = webhooks.create_subscription(
            ctx.session,
            actor=ctx.actor,
            url=body.url,
            event_types=body.event_types,
            namespace=body.namespace,
            allow=AllowList.parse(settings.webhooks.allow_private_targets),
            resolver=system_resolver,
        )
        return _with_secret(row, secret)

    return ctx.idempotent(body, produce, status_code=201, secret_fields=("secret",))


@router.get("", response_model=Page[WebhookRead], responses=responses(errors.InvalidPageToken))
def list_webhooks(actor: ActorDep, session: SessionDep, page: PageDep) -> Page[WebhookRead]:
    """Your webhooks newest first (registry-wide managers: everyone's)."""
    rows = webhooks.list_subscriptions(
        session, actor=actor, before=decode_time_token(page.token), limit=page.fetch
    )
    return page_of(
        rows, page.limit, WebhookRead.model_validate, key=lambda w: time_key(w.created_at, w.id)
    )


@router.get("/{webhook_id}", response_model=WebhookRead, responses=_NOT_FOUND)
def get_webhook(webhook_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> WebhookRead:
    """One webhook (never its secret)."""
    row = webhooks.get_subscription(session, actor=actor, sub_id=webhook_id)
    return WebhookRead.model_validate(row)


@router.post("/{webhook_id}/disable", response_model=WebhookRead, responses=_NOT_FOUND)
def disable_webhook(webhook_id: uuid.UUID, body: WebhookDisable, ctx: WriteDep) -> object:
    """Stop sending; pending deliveries stay pending."""
    return ctx.idempotent(
        body,
        lambda: WebhookRead.model_validate(
            webhooks.disable_subscription(
                ctx.session, actor=ctx.actor, sub_id=webhook_id, reason=body.reason
            )
        ),
    )


@router.post("/{webhook_id}/rotate-secret", response_model=WebhookWithSecret, responses=_NOT_FOUND)
def rotate_webhook_secret(
    webhook_id: uuid.UUID, body: SecretRotate, ctx: WriteDep, settings: SettingsDep
) -> object:
    """A new signing secret, answered once; the previous one keeps signing (a second
    signature) for ``grace_s`` seconds."""
    grace = settings.webhooks.secret_grace_s if body.grace_s is None else body.grace_s

    def produce() -> WebhookWithSecret:
        row, secret = webhooks.rotate_secret(
            ctx.session, actor=ctx.actor, sub_id=webhook_id, grace_s=grace
        )
        return _with_secret(row, secret)

    return ctx.idempotent(body, produce, secret_fields=("secret",))


@router.get(
    "/{webhook_id}/deliveries",
    response_model=Page[DeliveryRead],
    responses=responses(errors.WebhookNotFound, errors.InvalidPageToken),
)
def list_deliveries(
    webhook_id: uuid.UUID,
    actor: ActorDep,
    session: SessionDep,
    page: PageDep,
    status_filter: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
) -> Page[DeliveryRead]:
    """The webhook's deliveries, newest event first (``status``: only those)."""
    token = decode_token(page.token, arity=1, types=(int,))
    rows = webhooks.list_deliveries(
        session,
        actor=actor,
        sub_id=webhook_id,
        status=status_filter,
        before_seq=token[0] if token else None,
        limit=page.fetch,
    )
    return page_of(rows, page.limit, DeliveryRead.model_validate, key=lambda d: [d.audit_seq])


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryRead,
    responses=responses(errors.WebhookNotFound, errors.WebhookDeliveryNotFound),
)
def redeliver(webhook_id: uuid.UUID, delivery_id: uuid.UUID, ctx: WriteDep) -> object:
    """Send a delivery again (same ``webhook-id``) when it is next in its webhook's queue."""
    return ctx.idempotent(
        None,
        lambda: DeliveryRead.model_validate(
            webhooks.redeliver(
                ctx.session, actor=ctx.actor, sub_id=webhook_id, delivery_id=delivery_id
            )
        ),
    )
