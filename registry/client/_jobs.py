"""The JSON calls of server-side adapter maths: submit a job (merge, compose, aggregate),
follow it, wait for it, cancel it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from registry.client._errors import JSON, ClientError
from registry.client._refs import seg
from registry.client._transport import _Transport

#: The states a job ends in.
FINISHED = frozenset({"succeeded", "failed", "cancelled"})


class _Jobs(_Transport):
    """One typed method per jobs endpoint. Submitting and cancelling send an
    ``Idempotency-Key`` (retried; a replay returns the first answer)."""

    def submit_job(self, body: JSON, *, idempotency_key: str | None = None) -> JSON:
        """``POST /api/v1/jobs`` → JobRead (202, state ``queued``). ``body`` is the request:
        ``{"kind": "compose", "target": "NS/NAME", "inputs": [{"ref", "weight"}], "method"...}``.
        """
        result: JSON = self._json(
            "POST", "/api/v1/jobs", json_body=body, idempotency_key=self._key(idempotency_key)
        )
        return result

    def get_job(self, job_id: str) -> JSON:
        """``GET /api/v1/jobs/{id}`` → JobRead."""
        result: JSON = self._json("GET", f"/api/v1/jobs/{seg(job_id)}")
        return result

    def list_jobs(self, *, limit: int | None = None, page_token: str | None = None) -> JSON:
        """``GET /api/v1/jobs``: your jobs newest first (an admin: everyone's)."""
        result: JSON = self._json("GET", "/api/v1/jobs", params=self._page(limit, page_token))
        return result

    def cancel_job(self, job_id: str, *, idempotency_key: str | None = None) -> JSON:
        """``POST /api/v1/jobs/{id}/cancel`` → JobRead (``cancelled``, or ``running`` with
        ``cancel_requested`` until its worker stops it)."""
        result: JSON = self._json(
            "POST",
            f"/api/v1/jobs/{seg(job_id)}/cancel",
            idempotency_key=self._key(idempotency_key),
        )
        return result

    def wait_job(
        self,
        job_id: str,
        *,
        timeout: float = 3600.0,
        poll: float = 2.0,
        on_progress: Callable[[JSON], Any] | None = None,
    ) -> JSON:
        """Poll the job every ``poll`` seconds until it ends (``succeeded``, ``failed``,
        ``cancelled``) and return it; ``on_progress(job)`` sees each answer. After
        ``timeout`` seconds: ``ClientError`` ``request_timeout`` (the job goes on)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if on_progress is not None:
                on_progress(job)
            if job.get("state") in FINISHED:
                return job
            if time.monotonic() + poll > deadline:
                raise ClientError(
                    "request_timeout",
                    0,
                    f"job {job_id} did not finish within {timeout:g} s",
                    {"id": job_id, "state": job.get("state")},
                )
            self._sleep(poll)
