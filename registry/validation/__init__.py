"""Pure adapter validation: strict safetensors parsing, config schema, checks against a base.

No database, no HTTP, no torch. Everything reads through :class:`ByteSource`, so the same code
validates a local directory, a staged upload or an object in S3 (range reads).
"""

from registry.validation.adapter import DEFAULT_SCAN_LIMIT_BYTES, validate_adapter
from registry.validation.config import (
    KNOWN_PEFT_TYPES,
    PEFT_TYPES,
    AdapterConfig,
    config_from_dict,
    parse_config,
)
from registry.validation.files import (
    ALLOWED_NAMES,
    TEXT_EXTRAS,
    check_file_allowed,
    check_text_extra,
)
from registry.validation.manifest import (
    BaseManifest,
    manifest_from_parts,
    read_base_dir,
    read_base_sources,
)
from registry.validation.report import ValidationReport
from registry.validation.safetensors import (
    MAX_HEADER_BYTES,
    SafetensorsHeader,
    TensorInfo,
    parse_header,
)
from registry.validation.source import ByteSource, BytesSource, FileSource
from registry.validation.tensor_health import scan_tensors_health, tensor_is_all_zero

__all__ = [
    "ALLOWED_NAMES",
    "DEFAULT_SCAN_LIMIT_BYTES",
    "KNOWN_PEFT_TYPES",
    "MAX_HEADER_BYTES",
    "PEFT_TYPES",
    "TEXT_EXTRAS",
    "AdapterConfig",
    "BaseManifest",
    "ByteSource",
    "BytesSource",
    "FileSource",
    "SafetensorsHeader",
    "TensorInfo",
    "ValidationReport",
    "check_file_allowed",
    "check_text_extra",
    "config_from_dict",
    "manifest_from_parts",
    "parse_config",
    "parse_header",
    "read_base_dir",
    "read_base_sources",
    "scan_tensors_health",
    "tensor_is_all_zero",
    "validate_adapter",
]
