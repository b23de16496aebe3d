"""Errors of the catalog (namespaces, base models, adapters, versions, uploads), idempotency
and artifact storage."""

from __future__ import annotations

from registry.errors.base import BadRequest, Conflict, NotFound, RegistryError, Unavailable

# --- catalog -------------------------------------------------------------------------------


class NamespaceNotFound(NotFound):
    """No namespace of that name (``context["namespace"]``), or one the caller may not see."""

    code = "namespace_not_found"


class NamespaceAlreadyExists(Conflict):
    """Creating a namespace whose name is taken (``context["namespace"]``)."""

    code = "namespace_exists"


class BaseModelNotFound(NotFound):
    """No base model, or no such revision of it, by ``NAME@REV`` (``context["base"]``)."""

    code = "base_model_not_found"


class BaseModelVersionExists(Conflict):
    """Registering a base model revision that exists (``context["base"]``)."""

    code = "base_model_version_exists"


class AdapterNotFound(NotFound):
    """No adapter of that name in the namespace (``context["adapter"]``: ``NS/NAME``)."""

    code = "adapter_not_found"


class VersionNotFound(NotFound):
    """No adapter version by that reference (``context["ref"]``)."""

    code = "version_not_found"


class UnknownMethod(BadRequest):
    """A ``peft_type`` search term (``?peft_type=`` / ``--peft-type``) names no method, variant
    or ``family:NAME`` the registry knows (``context["peft_type"]``: the term;
    ``context["known"]``: the names it understands; ``context["families"]``)."""

    code = "unknown_method"


class VersionFileNotFound(NotFound):
    """The version has no file of that name (``context["file"]``)."""

    code = "file_not_found"


class VersionAlreadyExists(Conflict):
    """The same content (same version digest) is already registered for this adapter."""

    code = "version_exists"


class InvalidTransition(Conflict):
    """A state change the current state does not allow (version, deployment or promotion)."""

    code = "invalid_transition"


class UploadNotFound(NotFound):
    """No upload session of that id (``context["upload_id"]``), or one of another principal."""

    code = "upload_not_found"


class UploadStateConflict(Conflict):
    """The upload session is not open (finished, expired, for another purpose), is
    full, or its staged files are gone."""

    code = "upload_state_conflict"


class DirectUploadUnsupported(Conflict):
    """A direct (presigned multipart) upload asked of a store that cannot take one (the local
    backend): send the file through ``PUT .../files/{name}`` instead."""

    code = "direct_upload_unsupported"


class InvalidPartList(BadRequest):
    """Completing a direct upload with a part list the store refuses or that does not match
    the declared size (``context["reason"]``)."""

    code = "invalid_part_list"


class VersionVerifying(Conflict):
    """The version's files were uploaded straight to the store and the server has not yet
    checked their sha256 (state ``verifying``): it cannot be pulled, resolved or deployed."""

    code = "version_verifying"


class VersionFailedVerification(Conflict):
    """The version was quarantined because a direct upload's stored bytes did not hash to the
    digest the client declared: its files are never served (the declared digest may name
    someone else's blob)."""

    code = "version_failed_verification"


class DatasetConflict(Conflict):
    """Reserved for a dataset that contradicts a recorded one; no call raises it yet."""

    code = "dataset_conflict"


# --- idempotency ---------------------------------------------------------------------------


class IdempotencyKeyReused(RegistryError):
    """Same ``Idempotency-Key`` with a different request body."""

    code = "idempotency_key_reused"
    status_code = 422


class IdempotencyKeyInFlight(Conflict):
    """Another request with the same ``Idempotency-Key`` is still running (``context["key"]``)."""

    code = "idempotency_key_in_flight"


# --- storage -------------------------------------------------------------------------------


class StorageUnavailable(Unavailable):
    """The artifact store failed or is not answering (``reason`` ``circuit_open``: retry later)."""

    code = "storage_unavailable"


class BlobNotFound(NotFound):
    """The artifact store holds no blob (or staged object) under that digest or key."""

    code = "blob_not_found"
