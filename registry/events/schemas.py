"""Request and response bodies of the webhooks API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from registry import refs
from registry.errors import InvalidWebhookUrl, UnknownEventType, WebhookTargetBlocked
from registry.events.catalog import EVENT_TYPES
from registry.schemas import Strict, documented, refused_with

# The URL's full rules (a host that resolves only to public addresses, unless allowed) are the
# service's: the pattern states the shape, the errors what else refuses a matching URL.
# Printable ASCII only (an IDN host goes in its punycode form); no userinfo, no fragment.
URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9._~%!$&'()*+,;=:\[\]-]+(?:[/?][!-\"$-~]*)?$"
EventType = Annotated[
    str,
    Field(
        max_length=64,
        json_schema_extra={"enum": list(EVENT_TYPES), **refused_with(UnknownEventType)},
    ),
]


class WebhookCreate(Strict):
    url: str = Field(
        min_length=8,
        max_length=2048,
        description="http(s) URL the events are POSTed to (a public address: docs/events.md).",
        json_schema_extra=documented(URL_PATTERN, InvalidWebhookUrl, WebhookTargetBlocked),
    )
    event_types: list[EventType] = Field(
        min_length=1, max_length=32, description="Event types to send (see docs/events.md)."
    )
    namespace: str | None = Field(
        None,
        max_length=64,
        description="Only events of this namespace (None: every one).",
        json_schema_extra=documented(refs.SIMPLE_NAME_PATTERN),
    )


class WebhookDisable(Strict):
    reason: str | None = Field(None, max_length=200)


class SecretRotate(Strict):
    grace_s: int | None = Field(
        None,
        ge=0,
        le=30 * 86_400,
        description="Seconds the previous secret still signs (a second signature); default "
        "REGISTRY_WEBHOOKS__SECRET_GRACE_S.",
    )


class WebhookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    event_types: list[str]
    namespace: str | None
    owner_id: uuid.UUID
    enabled: bool
    disabled_reason: str | None
    cursor: int
    previous_secret_expires_at: datetime | None
    created_at: datetime


class WebhookWithSecret(WebhookRead):
    """Answered once, at creation and rotation: the signing secret is not shown again."""

    secret: str


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    subscription_id: uuid.UUID
    audit_seq: int
    event_type: str
    webhook_id: str
    status: str
    attempts: int
    next_attempt_at: datetime
    first_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
