"""Bad adapters (DESIGN.md "Error codes for bad adapters"): validation refusals with a stable
``context["reason"]``."""

from __future__ import annotations

from typing import Any

from registry.errors.base import RegistryError

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
