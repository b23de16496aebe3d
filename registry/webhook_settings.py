"""Settings of the webhook delivery worker (``REGISTRY_WEBHOOKS__*``).

Kept out of ``registry/settings.py`` (one field there) so the events package owns its knobs.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class WebhookSettings(BaseModel):
    enabled: bool = Field(
        True,
        description="Run the webhook delivery worker in this server process (one replica acts "
        "per round: a PostgreSQL advisory lock, SQLite's write lock).",
    )
    poll_s: float = Field(
        1.0, gt=0, description="Seconds between delivery rounds when there was nothing to send."
    )
    timeout_s: float = Field(
        10.0, gt=0, le=120, description="Connect/read/write timeout of one webhook request."
    )
    claim_lease_s: float = Field(
        60.0,
        gt=0,
        description="A claimed delivery is not claimed again by another replica for this long; "
        "a replica that died mid-send is retried after it (at-least-once).",
    )
    backoff_base_s: float = Field(
        5.0, gt=0, description="Delay after the first failed attempt; doubles each time."
    )
    backoff_max_s: float = Field(3600.0, gt=0, description="Cap of the retry delay.")
    give_up_after_s: float = Field(
        86_400.0,
        gt=0,
        description="A delivery still failing this long after its first attempt is marked "
        "failed, and the subscription moves on to its next event.",
    )
    batch: int = Field(
        200, ge=1, le=10_000, description="Audit events read per subscription and round."
    )
    allow_private_targets: list[str] = Field(
        default_factory=list,
        description="CIDRs (10.0.0.0/8, ::1/128) or exact host names that webhook URLs may "
        "reach although they are private, loopback, link-local or reserved. Empty: only "
        "public addresses.",
    )
    secret_grace_s: int = Field(
        86_400,
        ge=0,
        description="Default seconds a rotated-out secret still signs deliveries (a second "
        "signature) so receivers can switch over.",
    )
