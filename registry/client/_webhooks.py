"""The JSON calls of webhooks: subscribe, list, show, disable, rotate the secret, list and
redeliver deliveries."""

from __future__ import annotations

from registry.client._errors import JSON
from registry.client._refs import seg
from registry.client._transport import _Transport


class _Webhooks(_Transport):
    """One typed method per webhooks endpoint; writes send an ``Idempotency-Key``."""

    def create_webhook(
        self,
        url: str,
        event_types: list[str],
        *,
        namespace: str | None = None,
        idempotency_key: str | None = None,
    ) -> JSON:
        """``POST /api/v1/webhooks`` → the webhook with its ``secret`` (shown once)."""
        body = {"url": url, "event_types": event_types, "namespace": namespace}
        result: JSON = self._json(
            "POST", "/api/v1/webhooks", json_body=body, idempotency_key=self._key(idempotency_key)
        )
        return result

    def list_webhooks(self, *, limit: int | None = None, page_token: str | None = None) -> JSON:
        """``GET /api/v1/webhooks``: yours newest first (registry-wide managers: everyone's)."""
        result: JSON = self._json("GET", "/api/v1/webhooks", params=self._page(limit, page_token))
        return result

    def get_webhook(self, webhook_id: str) -> JSON:
        """``GET /api/v1/webhooks/{id}``."""
        result: JSON = self._json("GET", f"/api/v1/webhooks/{seg(webhook_id)}")
        return result

    def disable_webhook(
        self, webhook_id: str, *, reason: str | None = None, idempotency_key: str | None = None
    ) -> JSON:
        """``POST /api/v1/webhooks/{id}/disable``."""
        result: JSON = self._json(
            "POST",
            f"/api/v1/webhooks/{seg(webhook_id)}/disable",
            json_body={"reason": reason},
            idempotency_key=self._key(idempotency_key),
        )
        return result

    def rotate_webhook_secret(
        self, webhook_id: str, *, grace_s: int | None = None, idempotency_key: str | None = None
    ) -> JSON:
        """``POST /api/v1/webhooks/{id}/rotate-secret`` → the webhook with its new ``secret``."""
        result: JSON = self._json(
            "POST",
            f"/api/v1/webhooks/{seg(webhook_id)}/rotate-secret",
            json_body={"grace_s": grace_s},
            idempotency_key=self._key(idempotency_key),
        )
        return result

    def list_webhook_deliveries(
        self,
        webhook_id: str,
        *,
        status: str | None = None,
        limit: int | None = None,
        page_token: str | None = None,
    ) -> JSON:
        """``GET /api/v1/webhooks/{id}/deliveries``: newest event first."""
        params = self._page(limit, page_token)
        if status is not None:
            params["status"] = status
        result: JSON = self._json(
            "GET", f"/api/v1/webhooks/{seg(webhook_id)}/deliveries", params=params
        )
        return result

    def redeliver_webhook(
        self, webhook_id: str, delivery_id: str, *, idempotency_key: str | None = None
    ) -> JSON:
        """``POST /api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver``."""
        result: JSON = self._json(
            "POST",
            f"/api/v1/webhooks/{seg(webhook_id)}/deliveries/{seg(delivery_id)}/redeliver",
            idempotency_key=self._key(idempotency_key),
        )
        return result
