"""Authorization for the serving hot path with a short per-token decision cache.

A resolve must not cost a database round trip in steady state, so the ``resolve`` decision for
(token, namespace, policy version) is cached for ``ttl_s`` (default 5 s, like the token cache):
a revoked membership stops a resolver within that time. Every other route reads memberships
fresh on each request.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass

from registry.access.actor import deployment_resource
from registry.access.policy_sets import PolicyHolder
from registry.access.subjects import load_actor
from registry.auth.principal import AuthenticatedPrincipal
from registry.db.session import Sessions, unit_of_work
from registry.errors import DeploymentNotFound, PolicyDenied


@dataclass(frozen=True, slots=True)
class _Entry:
    expires: float
    allowed: bool
    readable: bool
    policy: str


class ResolveGuard:
    def __init__(
        self, sessions: Sessions, holder: PolicyHolder, ttl_s: float, capacity: int = 50_000
    ) -> None:
        self._sessions = sessions
        self._holder = holder
        self._ttl_s = ttl_s
        self._capacity = capacity
        self._entries: dict[tuple[uuid.UUID, uuid.UUID | None, str], _Entry] = {}
        self._lock = threading.Lock()

    def cached(self, principal: AuthenticatedPrincipal, namespace: str, deployment: str) -> bool:
        """True when a cached decision allows; raises a cached refusal; False on a miss."""
        entry = self._entries.get((principal.id, principal.token_id, namespace))
        if entry is None or entry.expires <= time.monotonic():
            return False
        self._raise_if_refused(entry, principal, namespace, deployment)
        return True

    def decide(self, principal: AuthenticatedPrincipal, namespace: str, deployment: str) -> None:
        """Decide with a fresh read of the caller (blocking: call it from a worker thread)."""
        with unit_of_work(self._sessions.read) as session:
            active = self._holder.current(session)
            actor = load_actor(session, principal, active.authorizer)
            resource = deployment_resource(deployment, namespace)
            decision = actor.decide("resolve", resource)
            readable = decision.allowed or actor.decide("read", resource).allowed
        entry = _Entry(time.monotonic() + self._ttl_s, decision.allowed, readable, decision.policy)
        if self._ttl_s > 0:
            with self._lock:
                if len(self._entries) >= self._capacity:
                    self._entries = {}
                self._entries[(principal.id, principal.token_id, namespace)] = entry
        self._raise_if_refused(entry, principal, namespace, deployment)

    @staticmethod
    def _raise_if_refused(
        entry: _Entry, principal: AuthenticatedPrincipal, namespace: str, deployment: str
    ) -> None:
        if entry.allowed:
            return
        if not entry.readable:
            raise DeploymentNotFound("no such deployment", context={"deployment": deployment})
        raise PolicyDenied(
            f"{principal.name} may not resolve deployment:{deployment} (policy {entry.policy})",
            context={
                "action": "resolve",
                "resource": f"deployment:{deployment}",
                "policy": entry.policy,
            },
        )

    def clear(self) -> None:
        with self._lock:
            self._entries = {}
