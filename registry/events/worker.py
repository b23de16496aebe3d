"""The webhook delivery worker: a daemon thread of the server process.

Each round: one short write transaction fans new audit events out into deliveries and leases
the due head of every subscription's queue (:mod:`registry.events.outbox`); the requests are
then sent holding no transaction; each outcome is written in a transaction of its own. With
several replicas only one fans out and claims at a time: on PostgreSQL the claim transaction
holds a transaction-level advisory lock (``pg_try_advisory_xact_lock``: the others skip the
round), as the rollout controller does; on SQLite the write transaction (``BEGIN IMMEDIATE``)
serialises them. A lease taken by one replica is not due for the others, so a delivery is sent
by one replica at a time; one that dies mid-send is retried when its lease ends.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from registry.access.policy_sets import PolicyHolder
from registry.db.session import Sessions, unit_of_work
from registry.events import outbox, sender
from registry.events.targets import AllowList, Resolver, system_resolver
from registry.webhook_settings import WebhookSettings

log = logging.getLogger("registry.webhooks")

ADVISORY_LOCK_KEY = 0x5EED_0B0B  # "the webhook claim round", any stable 64-bit value
MAX_PARALLEL_SENDS = 8


def try_round_lock(session: Session, key: int) -> bool:
    """Take the round's lock in ``session``'s write transaction: on PostgreSQL a
    transaction-level advisory lock on ``key`` (False: another replica holds it, skip the
    round); on SQLite the write transaction (``BEGIN IMMEDIATE``) already serialises rounds."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key}))


class WebhookWorker:
    def __init__(
        self,
        sessions: Sessions,
        policies: PolicyHolder,
        settings: WebhookSettings,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        resolver: Resolver = system_resolver,
    ) -> None:
        self._sessions = sessions
        self._policies = policies
        self.settings = settings
        self._allow = AllowList.parse(settings.allow_private_targets)
        self._clock = clock
        self._resolver = resolver
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.timeout_s * 2 + 5)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                busy = self.round()
            except Exception:  # a failing round (database down) must not end the loop
                log.exception("webhook round failed")
                busy = 0
            if not busy:
                self._stopping.wait(self.settings.poll_s)

    def claim(self) -> list[outbox.Claim]:
        """Fan out and lease the due deliveries (nothing when another replica holds the
        round's lock)."""
        now = self._clock()
        with unit_of_work(self._sessions.read) as session:
            if not outbox.has_work(session, now=now):
                return []
        with unit_of_work(self._sessions.write) as session:
            if not try_round_lock(session, ADVISORY_LOCK_KEY):
                return []
            outbox.fan_out(session, now=now, batch=self.settings.batch)
            authorizer = self._policies.current(session).authorizer
            return outbox.claim_due(
                session, now=now, lease_s=self.settings.claim_lease_s, authorizer=authorizer
            )

    def deliver(self, claim: outbox.Claim) -> str | None:
        """Send one claimed delivery and record the outcome; the delivery's new status."""
        attempt = sender.send(
            claim,
            allow=self._allow,
            timeout_s=self.settings.timeout_s,
            resolver=self._resolver,
            timestamp=int(self._clock().timestamp()),
        )
        with unit_of_work(self._sessions.write) as session:
            return outbox.record(
                session,
                claim,
                status_code=attempt.status_code,
                error=attempt.error,
                now=self._clock(),
                settings=self.settings,
            )

    def round(self) -> int:
        """One round: claim, send the claims in parallel (at most one per subscription, so
        each subscription's order holds; a slow receiver does not hold up the others),
        record; the number sent."""
        claims = self.claim()
        if len(claims) <= 1:
            for claim in claims:
                self._deliver_logged(claim)
            return len(claims)
        with ThreadPoolExecutor(
            max_workers=min(MAX_PARALLEL_SENDS, len(claims)), thread_name_prefix="webhook-send"
        ) as pool:
            list(pool.map(self._deliver_logged, claims))
        return len(claims)

    def _deliver_logged(self, claim: outbox.Claim) -> None:
        if self._stopping.is_set():
            return  # the lease runs out and a later round retries it
        try:
            self.deliver(claim)
        except Exception:
            log.exception("webhook delivery %s failed to record", claim.delivery_id)
