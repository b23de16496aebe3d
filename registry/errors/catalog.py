"""Errors of the catalog (namespaces, base models, adapters, versions, uploads), idempotency
and artifact storage."""

from __future__ import annotations

from registry.errors.base import Conflict, NotFound, RegistryError, Unavailable

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
