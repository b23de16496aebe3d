"""Prometheus metrics of one server process (``GET /metrics``, text exposition format)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest


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

    def decision(self, action: str, deployment: str) -> None:
        self.controller_decisions.labels(action=action).inc()
        if action == "rollback":
            self.rollbacks.labels(kind="automatic").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
