"""A small typed HTTP client of the registry API (sync ``httpx``), used by the CLI.

Errors: every non-2xx answer becomes :class:`ClientError` with the server's stable ``code``,
``detail`` and ``context`` (the ``{"error", "detail", "context"}`` body). A refused connection,
a timeout or a gateway without a registry body is ``server_unavailable``; a downloaded file
whose bytes do not match its digest is ``integrity_failure``.

Retries: idempotent requests (GET, PUT of an upload file, POST carrying an ``Idempotency-Key``)
are retried on connection errors, 503 and ``idempotency_key_in_flight`` with bounded exponential
backoff. Every mutating POST sends an ``Idempotency-Key``: one uuid4 per call, reused across its
retries, so a retried registration is answered with the first answer instead of twice.

Transfers stream in 1 MiB chunks: uploads hash a file in a first pass (``X-Content-Digest``) and
send it in a second; downloads hash while writing into a temporary file next to the target and
rename it into place only when the digest matches.

Layout: ``_errors`` (:class:`ClientError`), ``_refs`` (references, digests), ``_transport``
(session, retries, JSON calls), ``_endpoints`` (typed JSON endpoints), ``_transfer`` (uploads,
downloads), ``_governance`` (principals, policies, deployments, promotions, audit),
``_traffic`` (traffic moves, resolve, routing tables, serving reports, audit served),
``_jobs`` (server-side adapter maths jobs), ``_mlflow`` (imports from MLflow), ``_maths``
(merge, compose and aggregate computed here, ``registry.maths`` and torch imported on use).
:class:`RegistryClient` is defined here so that ``registry.client.RegistryClient``
stays the one name to look up (and to swap in tests).
"""

from __future__ import annotations

from registry.client._errors import JSON, ClientError
from registry.client._governance import _Governance
from registry.client._jobs import _Jobs
from registry.client._logins import _Logins
from registry.client._maths import _Maths
from registry.client._mirror import _Mirror
from registry.client._mlflow import _Mlflow
from registry.client._refs import CHUNK_BYTES, sha256_file, split_ref, version_digest
from registry.client._traffic import _Traffic
from registry.client._transport import (
    BACKOFF_BASE_S,
    BACKOFF_CAP_S,
    DEFAULT_TIMEOUT_S,
    MAX_ATTEMPTS,
    RETRY_AFTER_CAP_S,
)
from registry.client._webhooks import _Webhooks
from registry.client.router import Route, Router, RouterError

__all__ = [
    "BACKOFF_BASE_S",
    "BACKOFF_CAP_S",
    "CHUNK_BYTES",
    "DEFAULT_TIMEOUT_S",
    "JSON",
    "MAX_ATTEMPTS",
    "RETRY_AFTER_CAP_S",
    "ClientError",
    "RegistryClient",
    "Route",
    "Router",
    "RouterError",
    "sha256_file",
    "split_ref",
    "version_digest",
]


class RegistryClient(_Maths, _Governance, _Traffic, _Jobs, _Mlflow, _Mirror, _Webhooks, _Logins):
    """Typed calls of the ``/api/v1`` HTTP API."""
