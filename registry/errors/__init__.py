"""Domain errors: every failure the registry reports has a stable ``code`` and an HTTP status.

This package's ``__init__`` is the public home of every error class: import them as
``from registry.errors import X`` (not a compatibility shim: the submodules only keep the
hierarchy in files of readable size, one per family: ``base`` (the root and the generic HTTP
families), ``access``, ``catalog``, ``adapters``, ``governance``, ``maths``).

The ``code`` is part of the API contract (clients and the CLI switch on it); class names are not.
No FastAPI import here: services raise these, ``api/errors.py`` renders them as
``{"error": code, "detail": message, "context": {...}}``.
"""

from __future__ import annotations

from registry.errors.access import (
    AdminExists,
    InvalidPolicy,
    OidcProviderUnavailable,
    OidcTokenInvalid,
    OidcTokenReused,
    PermissionDenied,
    PolicyDenied,
    PrincipalExists,
    PrincipalNotFound,
    PublisherExists,
    PublisherNotFound,
    SeparationOfDuties,
    TokenExceedsParent,
    TokenNotFound,
    Unauthenticated,
)
from registry.errors.adapters import (
    ADAPTER_ERROR_CODES,
    AdapterInvalid,
    CorruptSafetensors,
    DigestMismatch,
    ForbiddenFile,
    IncompatibleBase,
    InconsistentAdapter,
    InvalidAdapterConfig,
    InvalidBaseModel,
    MissingWeights,
    UnhealthyTensors,
    UnknownPeftType,
)
from registry.errors.base import (
    BadRequest,
    Conflict,
    DatabaseUnavailable,
    HeadersTooLarge,
    IntegrityFailure,
    InvalidDigest,
    InvalidName,
    InvalidPageToken,
    InvalidReference,
    InvalidRequest,
    InvalidUri,
    NotFound,
    PayloadTooLarge,
    RegistryError,
    RequestTimeout,
    Unavailable,
    UriNotAllowed,
)
from registry.errors.catalog import (
    AdapterNotFound,
    BaseModelNotFound,
    BaseModelVersionExists,
    BlobNotFound,
    DatasetConflict,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InvalidTransition,
    NamespaceAlreadyExists,
    NamespaceNotFound,
    StorageUnavailable,
    UnknownMethod,
    UploadNotFound,
    UploadStateConflict,
    VersionAlreadyExists,
    VersionFileNotFound,
    VersionNotFound,
)
from registry.errors.governance import (
    AuditChainBroken,
    AuditCheckpointMissing,
    AuditKeyRetired,
    DeploymentExists,
    DeploymentNotFound,
    GatesFailed,
    InvalidReport,
    NothingServed,
    PlanBelowFloor,
    PlanDigestMismatch,
    PreconditionFailed,
    PreconditionRequired,
    PromotionNotFound,
    PromotionStateConflict,
    StableChanged,
)
from registry.errors.maths import (
    IncompatibleAdapters,
    JobNotFound,
    JobStateConflict,
    MathsUnavailable,
    NotMergeable,
)

__all__ = [
    "ADAPTER_ERROR_CODES",
    "AdapterInvalid",
    "AdapterNotFound",
    "AdminExists",
    "AuditChainBroken",
    "AuditCheckpointMissing",
    "AuditKeyRetired",
    "BadRequest",
    "BaseModelNotFound",
    "BaseModelVersionExists",
    "BlobNotFound",
    "Conflict",
    "CorruptSafetensors",
    "DatabaseUnavailable",
    "DatasetConflict",
    "DeploymentExists",
    "DeploymentNotFound",
    "DigestMismatch",
    "ForbiddenFile",
    "GatesFailed",
    "HeadersTooLarge",
    "IdempotencyKeyInFlight",
    "IdempotencyKeyReused",
    "IncompatibleAdapters",
    "IncompatibleBase",
    "InconsistentAdapter",
    "IntegrityFailure",
    "InvalidAdapterConfig",
    "InvalidBaseModel",
    "InvalidDigest",
    "InvalidName",
    "InvalidPageToken",
    "InvalidPolicy",
    "InvalidReference",
    "InvalidReport",
    "InvalidRequest",
    "InvalidTransition",
    "InvalidUri",
    "JobNotFound",
    "JobStateConflict",
    "MathsUnavailable",
    "MissingWeights",
    "NamespaceAlreadyExists",
    "NamespaceNotFound",
    "NotFound",
    "NotMergeable",
    "NothingServed",
    "OidcProviderUnavailable",
    "OidcTokenInvalid",
    "OidcTokenReused",
    "PayloadTooLarge",
    "PermissionDenied",
    "PlanBelowFloor",
    "PlanDigestMismatch",
    "PolicyDenied",
    "PreconditionFailed",
    "PreconditionRequired",
    "PrincipalExists",
    "PrincipalNotFound",
    "PromotionNotFound",
    "PromotionStateConflict",
    "PublisherExists",
    "PublisherNotFound",
    "RegistryError",
    "RequestTimeout",
    "SeparationOfDuties",
    "StableChanged",
    "StorageUnavailable",
    "TokenExceedsParent",
    "TokenNotFound",
    "Unauthenticated",
    "Unavailable",
    "UnhealthyTensors",
    "UnknownMethod",
    "UnknownPeftType",
    "UploadNotFound",
    "UploadStateConflict",
    "UriNotAllowed",
    "VersionAlreadyExists",
    "VersionFileNotFound",
    "VersionNotFound",
    "all_error_classes",
]


def all_error_classes() -> list[type[RegistryError]]:
    """Every concrete error class (for docs and the OpenAPI ``responses`` tables)."""
    seen: list[type[RegistryError]] = []
    stack: list[type[RegistryError]] = [RegistryError]
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen
