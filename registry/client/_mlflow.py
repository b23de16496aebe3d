"""The JSON call of MLflow imports: register an adapter the server fetches from MLflow."""

from __future__ import annotations

from registry.client._errors import JSON
from registry.client._refs import seg
from registry.client._transport import _Transport


class _Mlflow(_Transport):
    def import_from_mlflow(
        self,
        namespace: str,
        name: str,
        *,
        source_uri: str,
        base: str,
        tracking_server: str | None = None,
        description: str = "",
        tags: list[str] | None = None,
        idempotency_key: str | None = None,
    ) -> JSON:
        """``POST .../mlflow-imports`` → MlflowImportRead ``{"created", "version", "source"}``:
        the server resolves ``source_uri`` on ``tracking_server`` (one of its allow-listed
        servers; None: its default), fetches the adapter and registers it; a source imported
        before answers its version again (``created`` false)."""
        body: JSON = {"source_uri": source_uri, "base": base, "description": description}
        if tracking_server is not None:
            body["tracking_server"] = tracking_server
        if tags:
            body["tags"] = list(tags)
        result: JSON = self._json(
            "POST",
            f"/api/v1/adapters/{seg(namespace)}/{seg(name)}/mlflow-imports",
            json_body=body,
            idempotency_key=self._key(idempotency_key),
        )
        return result
