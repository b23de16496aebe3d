"""Prometheus metrics of one server process (``GET /metrics``, text exposition format)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, generate_latest

_MAX_CACHED_CHILDREN = 10_000


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.resolves = Counter(
            "registry_resolves",
            "Resolve answers by deployment and arm.",
            ["deployment", "arm"],
            registry=self.registry,
        )
        self.routing_tables = Counter(
            "registry_routing_tables",
            "Routing-table answers by deployment and status (200 or 304).",
            ["deployment", "status"],
            registry=self.registry,
        )
        self.controller_decisions = Counter(
            "registry_controller_decisions",
            "Rollout controller decisions by action (advance, complete, rollback, hold).",
            ["action"],
            registry=self.registry,
        )
        self.rollbacks = Counter(
            "registry_rollbacks",
            "Rollbacks by kind (automatic, manual).",
            ["kind"],
            registry=self.registry,
        )
        self.reports = Counter(
            "registry_serving_reports",
            "Serving reports accepted, by arm.",
            ["arm"],
            registry=self.registry,
        )
        self.denials_suppressed = Counter(
            "registry_audit_denials_suppressed",
            "Refused calls whose authz.denied audit event was not written (the principal was "
            "past REGISTRY_AUDIT__DENIED_EVENTS_PER_WINDOW).",
            registry=self.registry,
        )

        self._resolve_children: dict[tuple[str, str], Any] = {}

    def resolved(self, deployment: str, arm: str) -> None:
        """Count one resolve answer (the labelled child is looked up once per deployment and
        arm: ``labels()`` takes a lock and builds its key on every call)."""
        child = self._resolve_children.get((deployment, arm))
        if child is None:
            if len(self._resolve_children) >= _MAX_CACHED_CHILDREN:
                self._resolve_children.clear()
            child = self.resolves.labels(deployment=deployment, arm=arm)
            self._resolve_children[(deployment, arm)] = child
        child.inc()

    def decision(self, action: str, deployment: str) -> None:
        self.controller_decisions.labels(action=action).inc()
        if action == "rollback":
            self.rollbacks.labels(kind="automatic").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
