"""Domain errors: every failure the registry reports has a stable ``code`` and an HTTP status.

The ``code`` is part of the API contract (clients and the CLI switch on it); class names are not.
No FastAPI import here: services raise these, ``api/errors.py`` renders them as
``{"error": code, "detail": message, "context": {...}}``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class RegistryError(Exception):
    """Base of every error the registry reports on purpose."""

    code: ClassVar[str] = "registry_error"
    status_code: ClassVar[int] = 500
    #: Set on refusals of mutating calls: the audit event the request layer appends in a
    #: transaction of its own after the refused request's transaction rolled back.
    audit_entry: Any = None

    def __init__(self, detail: str, *, context: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.context: dict[str, Any] = dict(context or {})

    def to_body(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail, "context": self.context}


# --- generic -------------------------------------------------------------------------------


class InvalidRequest(RegistryError):
    """The request does not match the API document. Its body has the shape of a schema
    validation failure (``context["errors"]``: ``loc``, ``msg``, ``type``), whoever raised it."""

    code = "invalid_request"
    status_code = 422

    def __init__(
        self,
        detail: str,
        *,
        loc: tuple[str | int, ...] = ("body",),
        context: dict[str, Any] | None = None,
    ) -> None:
        ctx = dict(context or {})
        ctx.setdefault("errors", [{"loc": list(loc), "msg": detail, "type": "value_error"}])
        super().__init__(detail, context=ctx)


class BadRequest(RegistryError):
    code = "bad_request"
    status_code = 400


class InvalidName(RegistryError):
    code = "invalid_name"
    status_code = 400


class InvalidReference(RegistryError):
    code = "invalid_reference"
    status_code = 400


class InvalidPageToken(RegistryError):
    code = "invalid_page_token"
    status_code = 400


class InvalidDigest(RegistryError):
    code = "invalid_digest"
    status_code = 400


class InvalidUri(RegistryError):
    code = "invalid_uri"
    status_code = 400


class UriNotAllowed(RegistryError):
    code = "uri_not_allowed"
    status_code = 403


class NotFound(RegistryError):
    code = "not_found"
    status_code = 404


class Conflict(RegistryError):
    code = "conflict"
    status_code = 409


class PayloadTooLarge(RegistryError):
    code = "payload_too_large"
    status_code = 413


class Unavailable(RegistryError):
    code = "unavailable"
    status_code = 503


class RequestTimeout(RegistryError):
    """The client sent its request body too slowly (slow-loris guard); the connection closes."""

    code = "request_timeout"
    status_code = 408


class HeadersTooLarge(RegistryError):
    """The request line and headers exceed ``server.max_header_bytes`` (the connection closes;
    answered by the HTTP protocol itself, before any route is known)."""

    code = "headers_too_large"
    status_code = 431


class DatabaseUnavailable(Unavailable):
    """The database did not answer in time, refused work (disk full) or is unreachable."""

    code = "database_unavailable"


# --- auth ----------------------------------------------------------------------------------


class Unauthenticated(RegistryError):
    code = "unauthenticated"
    status_code = 401


class PermissionDenied(RegistryError):
    code = "permission_denied"
    status_code = 403


class AdminExists(RegistryError):
    code = "admin_exists"
    status_code = 409


class PolicyDenied(PermissionDenied):
    """An authorization decision denied the call; ``context`` names the deciding policies."""

    code = "policy_denied"
    status_code = 403


class TokenExceedsParent(PermissionDenied):
    """A minted token would have more than the credential minting it: a scope the calling token
    does not hold, a lifetime past its expiry, or (from a CI credential) no CI identity.
    ``context["reason"]`` is ``scopes``, ``lifetime`` or ``ci_identity``."""

    code = "token_exceeds_parent"
    status_code = 403


class SeparationOfDuties(PermissionDenied):
    """Four-eyes: the approver requested the promotion, registered the version or owns its CI
    identity (enforced by the service, by policy and by a database constraint)."""

    code = "separation_of_duties"
    status_code = 403


class PrincipalNotFound(NotFound):
    code = "principal_not_found"


class PrincipalExists(Conflict):
    code = "principal_exists"


class TokenNotFound(NotFound):
    code = "token_not_found"


class PublisherNotFound(NotFound):
    code = "publisher_not_found"


class PublisherExists(Conflict):
    code = "publisher_exists"


class OidcTokenInvalid(Unauthenticated):
    """A CI OIDC token failed verification (signature, claims, audience, expiry, publisher)."""

    code = "oidc_token_invalid"
    status_code = 401


class OidcTokenReused(Unauthenticated):
    """The OIDC token's ``jti`` was used before (single use)."""

    code = "oidc_token_reused"
    status_code = 401


class OidcProviderUnavailable(RegistryError):
    code = "oidc_provider_unavailable"
    status_code = 503


class InvalidPolicy(RegistryError):
    """A policy set (Cedar policies, schema or gates.yaml) does not parse or validate."""

    code = "invalid_policy"
    status_code = 422


# --- catalog -------------------------------------------------------------------------------


class NamespaceNotFound(NotFound):
    code = "namespace_not_found"


class NamespaceAlreadyExists(Conflict):
    code = "namespace_exists"


class BaseModelNotFound(NotFound):
    code = "base_model_not_found"


class BaseModelVersionExists(Conflict):
    code = "base_model_version_exists"


class AdapterNotFound(NotFound):
    code = "adapter_not_found"


class VersionNotFound(NotFound):
    code = "version_not_found"


class VersionFileNotFound(NotFound):
    code = "file_not_found"


class VersionAlreadyExists(Conflict):
    """The same content (same version digest) is already registered for this adapter."""

    code = "version_exists"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class UploadNotFound(NotFound):
    code = "upload_not_found"


class UploadStateConflict(Conflict):
    code = "upload_state_conflict"


class DatasetConflict(Conflict):
    code = "dataset_conflict"


# --- idempotency ---------------------------------------------------------------------------


class IdempotencyKeyReused(RegistryError):
    """Same ``Idempotency-Key`` with a different request body."""

    code = "idempotency_key_reused"
    status_code = 422


class IdempotencyKeyInFlight(Conflict):
    code = "idempotency_key_in_flight"


# --- storage -------------------------------------------------------------------------------


class StorageUnavailable(Unavailable):
    code = "storage_unavailable"


class BlobNotFound(NotFound):
    code = "blob_not_found"


class IntegrityFailure(RegistryError):
    """Stored bytes no longer match their digest (tampered or corrupted blob)."""

    code = "integrity_failure"
    status_code = 502


# --- bad adapters (DESIGN.md "Error codes for bad adapters") ---------------------------------


class AdapterInvalid(RegistryError):
    """An adapter (or base checkpoint) failed validation.

    ``reason`` is the stable sub-reason (``truncated``, ``shape_mismatch``, ...) and always lands in
    ``context["reason"]``; ``context`` also names the tensor / module / file at fault.
    """

    code = "invalid_adapter"
    status_code = 400

    def __init__(self, detail: str, *, reason: str, context: dict[str, Any] | None = None) -> None:
        ctx = dict(context or {})
        ctx["reason"] = reason
        super().__init__(detail, context=ctx)
        self.reason = reason


class CorruptSafetensors(AdapterInvalid):
    code = "corrupt_safetensors"


class MissingWeights(AdapterInvalid):
    code = "missing_weights"


class UnknownPeftType(AdapterInvalid):
    code = "unknown_peft_type"


class InvalidAdapterConfig(AdapterInvalid):
    code = "invalid_adapter_config"


class InconsistentAdapter(AdapterInvalid):
    code = "inconsistent_adapter"


class IncompatibleBase(AdapterInvalid):
    code = "incompatible_base"


class ForbiddenFile(AdapterInvalid):
    code = "forbidden_file"


class DigestMismatch(AdapterInvalid):
    code = "digest_mismatch"


class UnhealthyTensors(AdapterInvalid):
    code = "unhealthy_tensors"


class InvalidBaseModel(AdapterInvalid):
    """A base checkpoint directory / manifest could not be read."""

    code = "invalid_base_model"


ADAPTER_ERROR_CODES: frozenset[str] = frozenset(
    cls.code
    for cls in (
        CorruptSafetensors,
        MissingWeights,
        UnknownPeftType,
        InvalidAdapterConfig,
        InconsistentAdapter,
        IncompatibleBase,
        ForbiddenFile,
        DigestMismatch,
        UnhealthyTensors,
        InvalidBaseModel,
    )
)


def all_error_classes() -> list[type[RegistryError]]:
    """Every concrete error class (for docs and the OpenAPI ``responses`` tables)."""
    seen: list[type[RegistryError]] = []
    stack: list[type[RegistryError]] = [RegistryError]
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen


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


class InvalidReport(RegistryError):
    """A serving report with impossible figures (negative counts, future window, unknown
    revision or arm)."""

    code = "invalid_report"
    status_code = 422
