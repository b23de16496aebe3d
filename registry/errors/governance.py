"""Errors of governance: deployments, promotions and the audit log."""

from __future__ import annotations

from registry.errors.base import Conflict, IntegrityFailure, NotFound, RegistryError

# --- governance: deployments, promotions, audit --------------------------------------------


class DeploymentNotFound(NotFound):
    code = "deployment_not_found"


class DeploymentExists(Conflict):
    code = "deployment_exists"


class PromotionNotFound(NotFound):
    code = "promotion_not_found"


class GatesFailed(Conflict):
    """A promotion's gates failed; ``context["gates"]`` lists each gate and its reason."""

    code = "gates_failed"


class PromotionStateConflict(Conflict):
    """Approve/reject/cancel raced another change of the request, or the request is not pending."""

    code = "promotion_state_conflict"


class StableChanged(Conflict):
    """The deployment's stable version changed since the request was made (and its gates
    computed against the one before): the request is expired; request again."""

    code = "stable_changed"


class PlanBelowFloor(RegistryError):
    """A rollout plan misses the floor of the active ``rollout.yaml``; ``context["failures"]``
    lists each failed check."""

    code = "plan_below_floor"
    status_code = 422


class PlanDigestMismatch(Conflict):
    """The approval names another rollout plan digest than the request's plan."""

    code = "plan_digest_mismatch"


class AuditChainBroken(IntegrityFailure):
    """``audit verify`` found an event or checkpoint that does not match the chain."""

    code = "audit_chain_broken"
    status_code = 409


class AuditCheckpointMissing(IntegrityFailure):
    """``audit verify`` with ``require_checkpoint``: no signed checkpoint anchors the log, so a
    rewritten (re-chained) history could not be told from the real one."""

    code = "audit_checkpoint_missing"
    status_code = 409


class AuditKeyRetired(RegistryError):
    """The signing key this process holds was retired (``audit rotate-key``): it no longer signs
    checkpoints; restart the server so that it loads the new key."""

    code = "audit_key_retired"
    status_code = 503


class PreconditionFailed(Conflict):
    """The caller's expected revision (If-Match / expected_revision) is stale."""

    code = "precondition_failed"
    status_code = 412


class PreconditionRequired(Conflict):
    """A state-changing call on a deployment must say which revision it expects."""

    code = "precondition_required"
    status_code = 428


class NothingServed(NotFound):
    """No deployment revision was effective at the requested time."""

    code = "nothing_served"


class RevisionNotFound(NotFound):
    """The deployment has no revision with that number."""

    code = "revision_not_found"


class NoExperiment(Conflict):
    """The revision's rollout plan defines no experiment (no ``experiment:`` section), or
    nothing rolled the revision's candidate out under a plan."""

    code = "no_experiment"


class InvalidReport(RegistryError):
    """A serving report with impossible figures (negative counts, future window, unknown
    revision or arm)."""

    code = "invalid_report"
    status_code = 422
