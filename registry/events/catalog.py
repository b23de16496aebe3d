"""Which audit actions are webhook events, and under which event type.

An event type is derived from the audit event alone (its ``action`` and ``after``), so the
mapping is a pure function: fan-out, docs and tests share it. Audit actions that are not listed
(tokens, principals, policies, webhooks themselves...) are never sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EVENT_TYPES: tuple[str, ...] = (
    "version.registered",
    "version.imported",
    "version.archived",
    "evaluation.recorded",
    "promotion.requested",
    "promotion.overridden",
    "promotion.approved",
    "promotion.rejected",
    "rollout.started",
    "rollout.stepped",
    "rollout.completed",
    "rollout.rolled_back",
    "audit.checkpoint_created",
)

_BY_ACTION: Mapping[str, str] = {
    "adapter.version.archive": "version.archived",
    "evaluation.record": "evaluation.recorded",
    "promotion.request": "promotion.requested",
    "promotion.gates_overridden": "promotion.overridden",
    "promotion.approve": "promotion.approved",
    "promotion.rejected": "promotion.rejected",
    "audit.checkpoint": "audit.checkpoint_created",
}

_ROLLBACKS = frozenset({"manual_rollback", "automatic_rollback"})
_STARTS = frozenset({"promotion", "manual_rollout"})


def event_type(action: str, after: Mapping[str, Any] | None) -> str | None:
    """The event type of an audit event, or None when it is not a webhook event.

    Versions: ``adapter.version.register`` is ``version.imported`` when the bytes were copied
    from an import location (``after.imported_from``), else ``version.registered``.
    Rollouts are read off ``deployment.revision`` by its reason: a promotion or manual rollout
    that leaves a candidate serving starts a rollout (without a canary it completes at once); a
    controller step that keeps a candidate steps it, one that leaves none completes it; a
    manual or automatic rollback rolls it back.
    """
    after = after or {}
    if action == "adapter.version.register":
        return "version.imported" if after.get("imported_from") else "version.registered"
    if action == "deployment.revision":
        reason = after.get("reason")
        canary = after.get("candidate") is not None
        if reason in _ROLLBACKS:
            return "rollout.rolled_back"
        if reason in _STARTS:
            return "rollout.started" if canary else "rollout.completed"
        if reason == "step":
            return "rollout.stepped" if canary else "rollout.completed"
        return None
    return _BY_ACTION.get(action)


def unknown_types(names: list[str]) -> list[str]:
    return [n for n in names if n not in EVENT_TYPES]
