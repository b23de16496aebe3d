"""The JSON calls of the ``/api/v1`` API: health, namespaces, base models, adapters, versions
and evaluations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from registry.client._errors import JSON
from registry.client._refs import seg, split_ref
from registry.client._transport import _Transport


class _Endpoints(_Transport):
    """One typed method per JSON endpoint (file transfers live in :mod:`._transfer`)."""

    # --- health ----------------------------------------------------------------------------

    def health(self) -> JSON:
        """``GET /healthz``."""
        result: JSON = self._json("GET", "/healthz")
        return result

    # --- namespaces ------------------------------------------------------------------------

    def create_namespace(
        self, name: str, description: str = "", *, idempotency_key: str | None = None
    ) -> JSON:
        result: JSON = self._json(
            "POST",
            "/api/v1/namespaces",
            json_body={"name": name, "description": description},
            idempotency_key=self._key(idempotency_key),
        )
        return result

    def list_namespaces(self, *, limit: int | None = None, page_token: str | None = None) -> JSON:
        result: JSON = self._json("GET", "/api/v1/namespaces", params=self._page(limit, page_token))
        return result

    # --- base models -----------------------------------------------------------------------

    def register_base_model(
        self, body: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> JSON:
        """``POST /api/v1/base-models`` with name, revision, config, tensors manifest, ..."""
        result: JSON = self._json(
            "POST",
            "/api/v1/base-models",
            json_body=dict(body),
            idempotency_key=self._key(idempotency_key),
        )
        return result

    def list_base_models(self, *, limit: int | None = None, page_token: str | None = None) -> JSON:
        result: JSON = self._json(
            "GET", "/api/v1/base-models", params=self._page(limit, page_token)
        )
        return result

    def get_base_model(self, name: str, revision: str) -> JSON:
        result: JSON = self._json(
            "GET", f"/api/v1/base-models/{seg(name, '/')}/revisions/{seg(revision)}"
        )
        return result

    def get_base_manifest(self, name: str, revision: str) -> JSON:
        """The weights manifest ``{"schema_version", "config", "tensors"}`` of a base."""
        result: JSON = self._json(
            "GET", f"/api/v1/base-models/{seg(name, '/')}/revisions/{seg(revision)}/manifest"
        )
        return result

    def base_lineage(self, ref: str, *, descendants: bool = False) -> list[JSON]:
        """Ancestors (or descendants) of a base revision ``NAME@REV``."""
        name, _, revision = ref.rpartition("@")
        result: list[JSON] = self._json(
            "GET",
            f"/api/v1/base-models/{seg(name, '/')}/revisions/{seg(revision)}/lineage",
            params={"descendants": "true" if descendants else None},
        )
        return result

    # --- adapters --------------------------------------------------------------------------

    def list_adapters(
        self,
        *,
        namespace: str | None = None,
        filters: Mapping[str, Any] | None = None,
        limit: int | None = None,
        page_token: str | None = None,
    ) -> JSON:
        """Adapters; filters (peft_type, base, rank, state, tag) keep those with a match."""
        result: JSON = self._json(
            "GET",
            "/api/v1/adapters",
            params={"namespace": namespace, **(filters or {}), **self._page(limit, page_token)},
        )
        return result

    def get_adapter(self, namespace: str, name: str) -> JSON:
        result: JSON = self._json("GET", f"/api/v1/adapters/{seg(namespace)}/{seg(name)}")
        return result

    def register_version(
        self,
        namespace: str,
        name: str,
        body: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> JSON:
        """``POST .../versions``: validate an upload session (``upload_id``) or an allow-listed
        ``source_uri`` and register it as the next version."""
        result: JSON = self._json(
            "POST",
            f"/api/v1/adapters/{seg(namespace)}/{seg(name)}/versions",
            json_body=dict(body),
            idempotency_key=self._key(idempotency_key),
        )
        return result

    def list_versions(
        self,
        namespace: str,
        name: str,
        *,
        filters: Mapping[str, Any] | None = None,
        limit: int | None = None,
        page_token: str | None = None,
    ) -> JSON:
        """Versions newest first; filters: peft_type, base, rank, state, tag."""
        result: JSON = self._json(
            "GET",
            f"/api/v1/adapters/{seg(namespace)}/{seg(name)}/versions",
            params={**(filters or {}), **self._page(limit, page_token)},
        )
        return result

    def get_version(self, ref: str) -> JSON:
        result: JSON = self._json("GET", self._version_path(ref))
        return result

    def lineage(self, ref: str, *, descendants: bool = False) -> list[JSON]:
        result: list[JSON] = self._json(
            "GET",
            self._version_path(ref) + "/lineage",
            params={"descendants": "true" if descendants else None},
        )
        return result

    def update_tags(
        self,
        ref: str,
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        idempotency_key: str | None = None,
    ) -> JSON:
        result: JSON = self._json(
            "POST",
            self._version_path(ref) + "/tags",
            json_body={"add": list(add), "remove": list(remove)},
            idempotency_key=self._key(idempotency_key),
        )
        return result

    def archive(self, ref: str, *, reason: str = "", idempotency_key: str | None = None) -> JSON:
        result: JSON = self._json(
            "POST",
            self._version_path(ref) + "/archive",
            json_body={"reason": reason},
            idempotency_key=self._key(idempotency_key),
        )
        return result

    # --- evaluations -----------------------------------------------------------------------

    def record_evaluation(
        self, ref: str, body: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> JSON:
        result: JSON = self._json(
            "POST",
            self._version_path(ref) + "/evaluations",
            json_body=dict(body),
            idempotency_key=self._key(idempotency_key),
        )
        return result

    def list_evaluations(
        self,
        ref: str,
        *,
        suite: str | None = None,
        limit: int | None = None,
        page_token: str | None = None,
    ) -> JSON:
        result: JSON = self._json(
            "GET",
            self._version_path(ref) + "/evaluations",
            params={"suite": suite, **self._page(limit, page_token)},
        )
        return result

    def compare_evaluations(self, a: str, b: str) -> JSON:
        split_ref(a)
        split_ref(b)
        result: JSON = self._json("GET", "/api/v1/evaluations/compare", params={"a": a, "b": b})
        return result
