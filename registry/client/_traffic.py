"""The JSON calls of a deployment's traffic: moving it (compare-and-set), resolving keys,
routing tables, serving reports, controller decisions and "what served at time T"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from registry.client._errors import JSON
from registry.client._refs import seg
from registry.client._transport import _Transport


def if_match(revision: int | None) -> dict[str, str]:
    """The ``If-Match`` header of an expected deployment revision (none when not given)."""
    return {} if revision is None else {"If-Match": f'"{revision}"'}


class _Traffic(_Transport):
    """One typed method per traffic / serving endpoint.

    ``rollout`` and ``rollback`` are compare-and-set on the deployment's revision (sent as
    ``If-Match``) and are sent once, never retried: a retry whose first attempt did land would
    only meet ``412 precondition_failed`` (look at ``get_deployment`` instead). Without an
    expected revision the server answers ``428 precondition_required``. Serving reports carry an
    ``Idempotency-Key`` (retried; a replay returns the first answer).
    """

    # --- moving traffic ---------------------------------------------------------------------

    def rollout(self, name: str, *, share_bp: int, expected_revision: int | None) -> JSON:
        """``POST /api/v1/deployments/{d}/rollout``: set the candidate's share in basis points
        (10000 completes the rollout) → DeploymentRead."""
        result: JSON = self._json(
            "POST",
            f"/api/v1/deployments/{seg(name)}/rollout",
            json_body={"share_bp": share_bp},
            headers=if_match(expected_revision),
        )
        return result

    def rollback(
        self, name: str, *, expected_revision: int | None, to_revision: int | None = None
    ) -> JSON:
        """``POST /api/v1/deployments/{d}/rollback``: one new revision dropping the candidate
        (or returning to the previous stable version, or restoring ``to_revision``'s split)
        → DeploymentRead."""
        body: JSON = {} if to_revision is None else {"to_revision": to_revision}
        result: JSON = self._json(
            "POST",
            f"/api/v1/deployments/{seg(name)}/rollback",
            json_body=body,
            headers=if_match(expected_revision),
        )
        return result

    # --- serving ----------------------------------------------------------------------------

    def resolve(self, name: str, key: str) -> JSON:
        """``GET /api/v1/deployments/{d}/resolve?key=K`` → {"deployment", "revision", "arm",
        "ref", "version", "digest", "base", "base_digest", "peft_type", "r", "serving_name",
        "files"}."""
        result: JSON = self._json(
            "GET", f"/api/v1/deployments/{seg(name)}/resolve", params={"key": key}
        )
        return result

    def routing_table(self, name: str) -> JSON:
        """``GET /api/v1/deployments/{d}/routing-table`` (unconditional; :class:`Router` does
        the ``If-None-Match`` refreshes)."""
        result: JSON = self._json("GET", f"/api/v1/deployments/{seg(name)}/routing-table")
        return result

    def fetch_routing_table(
        self, name: str, etag: str | None = None, *, timeout_s: float = 2.0
    ) -> tuple[int, JSON | None, str | None]:
        """One conditional ``GET /api/v1/deployments/{d}/routing-table`` (``If-None-Match:
        etag``), never retried (:class:`Router` retries at its next refresh): ``(200, table,
        etag)`` or ``(304, None, etag)``. Any other answer raises :class:`ClientError`, a refused
        connection or a timeout ``server_unavailable``."""
        headers = {"If-None-Match": etag} if etag else {}
        path = f"/api/v1/deployments/{seg(name)}/routing-table"
        try:
            response = self._http.get(path, headers=headers, timeout=timeout_s)
        except httpx.TransportError as exc:
            raise self._unavailable(exc) from exc
        if response.status_code == 304:
            return 304, None, response.headers.get("ETag") or etag
        if response.status_code != 200:
            raise self._error(response)
        body = response.json()
        return 200, body if isinstance(body, dict) else None, response.headers.get("ETag")

    def report(
        self,
        name: str,
        *,
        revision: int,
        arm: str,
        window_start: str,
        window_end: str,
        requests: int,
        errors: int,
        latency_p50_ms: float | None = None,
        latency_p95_ms: float | None = None,
        scores: Mapping[str, float] | None = None,
        idempotency_key: str | None = None,
        units: int | None = None,
        metrics: Mapping[str, Mapping[str, Any]] | None = None,
        source: str | None = None,
    ) -> JSON:
        """``POST /api/v1/deployments/{d}/reports``: what serving saw for one arm of a revision
        over a window (times ISO 8601 with a zone) → ReportRead. ``units``, ``metrics`` and
        ``source``: experiment statistics, cumulative since the revision started, per source
        (docs/experiments.md)."""
        body: JSON = {
            "revision": revision,
            "arm": arm,
            "window_start": window_start,
            "window_end": window_end,
            "requests": requests,
            "errors": errors,
        }
        optional: dict[str, Any] = {
            "latency_p50_ms": latency_p50_ms,
            "latency_p95_ms": latency_p95_ms,
            "units": units,
            "source": source,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        if scores:
            body["scores"] = dict(scores)
        if metrics:
            body["metrics"] = {name: dict(stats) for name, stats in metrics.items()}
        result: JSON = self._json(
            "POST",
            f"/api/v1/deployments/{seg(name)}/reports",
            json_body=body,
            idempotency_key=self._key(idempotency_key),
        )
        return result

    def deployment_decisions(
        self, name: str, *, limit: int | None = None, page_token: str | None = None
    ) -> JSON:
        """A page of the rollout controller's decisions, newest first, with their evidence:
        ``{items, next_page_token}``."""
        result: JSON = self._json(
            "GET",
            f"/api/v1/deployments/{seg(name)}/decisions",
            params=self._page(limit, page_token),
        )
        return result

    def experiment(self, name: str, *, revision: int | None = None) -> JSON:
        """``GET /api/v1/deployments/{d}/experiment``: the A/B readout of a revision (default:
        the current one)."""
        result: JSON = self._json(
            "GET",
            f"/api/v1/deployments/{seg(name)}/experiment",
            params={"revision": revision} if revision is not None else None,
        )
        return result

    # --- history ----------------------------------------------------------------------------

    def audit_served(self, deployment: str, *, at: str, key: str | None = None) -> JSON:
        """``GET /api/v1/audit/served``: the revision effective at ``at`` (ISO 8601 with a
        zone), its versions, base, share, promotion and approvers, and ``key``'s arm."""
        result: JSON = self._json(
            "GET",
            "/api/v1/audit/served",
            params={"deployment": deployment, "at": at, "key": key},
        )
        return result
