"""``webhooks``: signed event notifications: create, list, show, disable, rotate-secret,
deliveries, redeliver (docs/events.md)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from registry.cli._common import Paging, command_group, list_command, paged, reply
from registry.cli._output import OutputOpt, render_record

app = command_group(
    "Webhooks: signed event notifications: create, list, show, disable, rotate-secret, "
    "deliveries, redeliver."
)

IdArg = Annotated[str, typer.Argument(metavar="ID", help="Webhook id.")]
_RECORD_KEYS = [
    "id",
    "url",
    "event_types",
    "namespace",
    "enabled",
    "disabled_reason",
    "owner_id",
    "cursor",
    "previous_secret_expires_at",
    "created_at",
]
_COLUMNS = ["id", "url", "namespace", "enabled", "event_types", "created_at"]
_DELIVERY_COLUMNS = [
    "id",
    "audit_seq",
    "event_type",
    "status",
    "attempts",
    "last_status_code",
    "next_attempt_at",
    "webhook_id",
]


def _row(webhook: dict[str, Any]) -> dict[str, Any]:
    return {**webhook, "event_types": ",".join(webhook.get("event_types", []))}


def _with_secret(webhook: dict[str, Any]) -> str:
    return (
        render_record(_row(webhook), _RECORD_KEYS)
        + f"\nsecret: {webhook['secret']}\n(shown once: keep it to verify signatures)"
    )


@app.command("create")
def create(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(metavar="URL", help="http(s) URL to POST events to.")],
    events: Annotated[
        list[str],
        typer.Option(
            "--event",
            "-e",
            help="An event type to send (repeat), e.g. version.registered, promotion.approved.",
        ),
    ],
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", help="Only events of this namespace.", show_default=False),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Subscribe URL to event types; prints the signing secret once.

    JSON: the webhook with "secret". Exit 3 (policy_denied), 6 (invalid_webhook_url,
    webhook_target_blocked: a private/loopback/link-local address, unknown_event_type).
    """
    reply(ctx, lambda api: api.create_webhook(url, events, namespace=namespace), _with_secret)


@app.command("show")
def show(ctx: typer.Context, webhook_id: IdArg, output: OutputOpt = None) -> None:
    """One webhook (never its secret). JSON: the webhook. Exit 4 (webhook_not_found)."""
    reply(
        ctx, lambda api: api.get_webhook(webhook_id), lambda w: render_record(_row(w), _RECORD_KEYS)
    )


@app.command("disable")
def disable(
    ctx: typer.Context,
    webhook_id: IdArg,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (shown with the webhook).")
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Stop sending; pending deliveries stay pending. Exit 4 (webhook_not_found)."""
    reply(
        ctx,
        lambda api: api.disable_webhook(webhook_id, reason=reason),
        lambda w: render_record(_row(w), _RECORD_KEYS),
    )


@app.command("rotate-secret")
def rotate_secret(
    ctx: typer.Context,
    webhook_id: IdArg,
    grace: Annotated[
        int | None,
        typer.Option(
            "--grace", min=0, help="Seconds the old secret still signs (default: the server's)."
        ),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """A new signing secret, printed once; the old one keeps signing (a second signature)
    during the grace. JSON: the webhook with "secret". Exit 4 (webhook_not_found)."""
    reply(ctx, lambda api: api.rotate_webhook_secret(webhook_id, grace_s=grace), _with_secret)


@app.command("deliveries")
@paged
def deliveries(
    ctx: typer.Context,
    webhook_id: IdArg,
    status: Annotated[
        str | None,
        typer.Option("--status", help="Only pending, delivered, failed or withheld."),
    ] = None,
    *,
    paging: Paging,
    output: OutputOpt = None,
) -> None:
    """A webhook's deliveries, newest event first.

    JSON: {"items": [{"id", "audit_seq", "event_type", "webhook_id", "status", "attempts",
    "next_attempt_at", "last_status_code", "last_error", ...}], "next_page_token"}.
    """
    paging.print(
        ctx,
        lambda api, limit, token: api.list_webhook_deliveries(
            webhook_id, status=status, limit=limit, page_token=token
        ),
        columns=_DELIVERY_COLUMNS,
    )


@app.command("redeliver")
def redeliver(
    ctx: typer.Context,
    webhook_id: IdArg,
    delivery_id: Annotated[str, typer.Argument(metavar="DELIVERY", help="Delivery id.")],
    output: OutputOpt = None,
) -> None:
    """Send a delivery again (same webhook-id) once it is next in its webhook's queue.
    Exit 4 (webhook_not_found, webhook_delivery_not_found)."""
    reply(ctx, lambda api: api.redeliver_webhook(webhook_id, delivery_id))


list_command(
    app,
    """Your webhooks newest first (registry-wide managers: everyone's).

    JSON: {"items": [webhook, ...], "next_page_token"}.
    """,
    lambda api, **page: api.list_webhooks(**page),
    columns=_COLUMNS,
    row=_row,
)
