"""The one error-code → exit-code table (DESIGN.md "CLI surface")."""

from __future__ import annotations

import pytest

from registry import errors
from registry.cli._output import (
    EXIT_CODES,
    EXIT_CONFLICT,
    EXIT_DENIED,
    EXIT_INTEGRITY,
    EXIT_INVALID,
    EXIT_NOT_FOUND,
    EXIT_UNAVAILABLE,
    EXIT_UNEXPECTED,
    EXIT_USAGE,
    exit_code_for,
)

#: DESIGN.md "Error codes for bad adapters" plus invalid_base_model.
BAD_ADAPTER_CODES = [
    "corrupt_safetensors",
    "missing_weights",
    "unknown_peft_type",
    "invalid_adapter_config",
    "inconsistent_adapter",
    "incompatible_base",
    "forbidden_file",
    "digest_mismatch",
    "unhealthy_tensors",
    "invalid_base_model",
]

EXPECTED = {
    "unauthenticated": EXIT_DENIED,
    "permission_denied": EXIT_DENIED,
    "uri_not_allowed": EXIT_DENIED,
    "namespace_not_found": EXIT_NOT_FOUND,
    "adapter_not_found": EXIT_NOT_FOUND,
    "version_not_found": EXIT_NOT_FOUND,
    "base_model_not_found": EXIT_NOT_FOUND,
    "upload_not_found": EXIT_NOT_FOUND,
    "blob_not_found": EXIT_NOT_FOUND,
    "conflict": EXIT_CONFLICT,
    "namespace_exists": EXIT_CONFLICT,
    "version_exists": EXIT_CONFLICT,
    "base_model_version_exists": EXIT_CONFLICT,
    "admin_exists": EXIT_CONFLICT,
    "invalid_transition": EXIT_CONFLICT,
    "idempotency_key_reused": EXIT_CONFLICT,
    "idempotency_key_in_flight": EXIT_CONFLICT,
    "upload_state_conflict": EXIT_CONFLICT,
    "invalid_request": EXIT_INVALID,
    "invalid_name": EXIT_INVALID,
    "invalid_reference": EXIT_INVALID,
    "invalid_digest": EXIT_INVALID,
    "invalid_uri": EXIT_INVALID,
    "bad_request": EXIT_INVALID,
    "invalid_page_token": EXIT_INVALID,
    "payload_too_large": EXIT_INVALID,
    "server_unavailable": EXIT_UNAVAILABLE,
    "unavailable": EXIT_UNAVAILABLE,
    "storage_unavailable": EXIT_UNAVAILABLE,
    "schema_out_of_date": EXIT_UNAVAILABLE,
    "integrity_failure": EXIT_INTEGRITY,
    "not_mergeable": EXIT_INVALID,
    "incompatible_adapters": EXIT_INVALID,
    "maths_unavailable": EXIT_USAGE,
}


@pytest.mark.parametrize("code", BAD_ADAPTER_CODES)
def test_bad_adapter_codes_exit_6(code: str) -> None:
    assert exit_code_for(code) == EXIT_INVALID


def test_every_bad_adapter_error_class_is_in_the_table() -> None:
    assert set(EXIT_CODES) >= errors.ADAPTER_ERROR_CODES
    assert all(EXIT_CODES[c] == EXIT_INVALID for c in errors.ADAPTER_ERROR_CODES)


@pytest.mark.parametrize(("code", "exit_code"), sorted(EXPECTED.items()))
def test_documented_codes(code: str, exit_code: int) -> None:
    assert exit_code_for(code) == exit_code


def _expected_for(cls: type[errors.RegistryError]) -> int:
    if cls.status_code == 501:  # not in this installation (maths_unavailable)
        return EXIT_USAGE
    if issubclass(cls, errors.AdapterInvalid):
        return EXIT_INVALID
    if issubclass(cls, errors.NotFound):
        return EXIT_NOT_FOUND
    if issubclass(cls, errors.Conflict | errors.IdempotencyKeyReused | errors.AdminExists):
        return EXIT_CONFLICT
    # 408: the client sent its request too slowly (a congested link): retrying is the answer.
    if issubclass(cls, errors.Unavailable) or cls.status_code in (408, 503):
        return EXIT_UNAVAILABLE
    if issubclass(cls, errors.Unauthenticated | errors.PermissionDenied | errors.UriNotAllowed):
        return EXIT_DENIED
    if issubclass(cls, errors.IntegrityFailure):
        return EXIT_INTEGRITY
    return EXIT_INVALID


def _all_error_classes() -> list[type[errors.RegistryError]]:
    import registry.app  # noqa: F401 - loads every module that defines error classes

    return [c for c in errors.all_error_classes() if c is not errors.RegistryError]


@pytest.mark.parametrize("cls", _all_error_classes(), ids=lambda c: c.code)
def test_every_registry_error_has_its_family_exit_code(cls: type[errors.RegistryError]) -> None:
    if cls.__module__.startswith("registry.errors."):  # the package's family modules
        assert cls.code in EXIT_CODES, f"{cls.code} missing from cli/_output.py EXIT_CODES"
    assert exit_code_for(cls.code, cls.status_code) == _expected_for(cls)


def test_schema_out_of_date_error_class() -> None:
    from registry.db.migrate import SchemaOutOfDate

    assert exit_code_for(SchemaOutOfDate.code) == EXIT_UNAVAILABLE


@pytest.mark.parametrize(
    ("code", "status", "exit_code"),
    [
        ("future_thing_not_found", None, EXIT_NOT_FOUND),
        ("future_thing_exists", None, EXIT_CONFLICT),
        ("future_conflict", 409, EXIT_CONFLICT),
        ("something_new", 403, EXIT_DENIED),
        ("something_new", 422, EXIT_INVALID),
        ("something_new", 503, EXIT_UNAVAILABLE),
        ("internal", 500, EXIT_UNEXPECTED),
        ("something_new", None, EXIT_UNEXPECTED),
    ],
)
def test_fallbacks(code: str, status: int | None, exit_code: int) -> None:
    assert exit_code_for(code, status) == exit_code
