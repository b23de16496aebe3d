"""Errors of webhook subscriptions and deliveries (registry/events)."""

from __future__ import annotations

from registry.errors.base import NotFound, RegistryError


class WebhookNotFound(NotFound):
    code = "webhook_not_found"


class WebhookDeliveryNotFound(NotFound):
    code = "webhook_delivery_not_found"


class InvalidWebhookUrl(RegistryError):
    """Not an absolute http(s) URL with a host, or one with credentials or a fragment."""

    code = "invalid_webhook_url"
    status_code = 400


class WebhookTargetBlocked(RegistryError):
    """The URL's host is (or resolves to) a private, loopback, link-local, multicast or
    reserved address that the operator's allow-list does not permit (SSRF guard)."""

    code = "webhook_target_blocked"
    status_code = 400


class UnknownEventType(RegistryError):
    code = "unknown_event_type"
    status_code = 400
