"""Base-model weights manifest: tensor names, dtypes and shapes plus the model's ``config.json``.

Built from safetensors headers only (never the weights), so a multi-GB base is described by
reading a few hundred kB. The manifest is what adapters are checked against; its ``digest`` is
the sha256 of its canonical JSON (``sort_keys``, separators ``(",", ":")``).

Every JSON file is refused from its size before it is read (``config.json`` over
:data:`MAX_BASE_CONFIG_BYTES`, the index over :data:`MAX_INDEX_BYTES`):
:class:`~registry.errors.ForbiddenFile` reason ``too_large``.

Errors: :class:`~registry.errors.InvalidBaseModel` reasons ``missing_config``, ``bad_config``
(config.json not a JSON object), ``missing_weights`` (no ``model.safetensors`` nor index, or a
shard named by the index is absent), ``bad_index`` (index malformed, a tensor in the wrong shard,
in two shards, or not listed), ``bad_manifest`` (:meth:`BaseManifest.from_json` input malformed);
:class:`~registry.errors.CorruptSafetensors` propagates from the header parser.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn

from registry.errors import ForbiddenFile, InvalidBaseModel
from registry.validation.quantized import logical_tensors, quantization_of
from registry.validation.safetensors import (
    MAX_HEADER_BYTES,
    MAX_TENSORS,
    SafetensorsHeader,
    parse_header,
)
from registry.validation.source import ByteSource, FileSource

MANIFEST_SCHEMA_VERSION = 1
MAX_BASE_CONFIG_BYTES = 4 * 1024 * 1024
#: A 200 k-tensor checkpoint's index is ~20 MB; decoding costs ~10x that in memory.
MAX_INDEX_BYTES = 32 * 1024 * 1024
SINGLE_WEIGHTS = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"

#: transformers model types whose Linear-like layers are ``Conv1D`` (weights stored ``[in, out]``).
CONV1D_MODEL_TYPES: frozenset[str] = frozenset(
    {"gpt2", "openai-gpt", "imagegpt", "decision_transformer"}
)

TensorSpec = tuple[str, tuple[int, ...]]


def _fail(reason: str, detail: str, **context: Any) -> NoReturn:
    raise InvalidBaseModel(detail, reason=reason, context=context)


def _int_field(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class BaseManifest:
    """Tensor name -> (dtype, shape) of a base checkpoint, with its ``config.json``."""

    tensors: dict[str, TensorSpec]
    config: dict[str, Any]

    @property
    def quantization(self) -> dict[str, Any] | None:
        """How a pre-quantized checkpoint is quantized (:func:`.quantized.quantization_of`)."""
        return quantization_of(self.config)

    def _get(self, *names: str) -> Any:
        """First present key, looked up in config.json then in a nested ``text_config``."""
        text_config = self.config.get("text_config")
        for scope in (self.config, text_config if isinstance(text_config, dict) else {}):
            for name in names:
                if scope.get(name) is not None:
                    return scope[name]
        return None

    @property
    def model_type(self) -> str | None:
        value = self.config.get("model_type")
        return value if isinstance(value, str) else None

    @property
    def architecture(self) -> str | None:
        archs = self.config.get("architectures")
        if isinstance(archs, list) and archs and isinstance(archs[0], str):
            return archs[0]
        return None

    @property
    def hidden_size(self) -> int | None:
        return _int_field(self._get("hidden_size", "n_embd", "d_model"))

    @property
    def vocab_size(self) -> int | None:
        return _int_field(self._get("vocab_size"))

    @property
    def num_layers(self) -> int | None:
        return _int_field(self._get("num_hidden_layers", "n_layer", "num_layers"))

    @property
    def num_attention_heads(self) -> int | None:
        return _int_field(self._get("num_attention_heads", "n_head", "num_heads"))

    @property
    def num_key_value_heads(self) -> int | None:
        """KV heads under grouped-query attention; equal to the attention heads otherwise."""
        return _int_field(self._get("num_key_value_heads")) or self.num_attention_heads

    @property
    def head_dim(self) -> int | None:
        explicit = _int_field(self._get("head_dim"))
        if explicit:
            return explicit
        hidden, heads = self.hidden_size, self.num_attention_heads
        return hidden // heads if hidden and heads else None

    @property
    def kv_width(self) -> int | None:
        """Prefix-tuning ``token_dim``: peft uses ``hidden // heads * kv_heads``."""
        hidden, heads, kv = self.hidden_size, self.num_attention_heads, self.num_key_value_heads
        return hidden // heads * kv if hidden and heads and kv else None

    @property
    def tie_word_embeddings(self) -> bool:
        # transformers' PretrainedConfig defaults to True; saved configs state it explicitly.
        value = self._get("tie_word_embeddings")
        return value if isinstance(value, bool) else True

    @property
    def uses_conv1d(self) -> bool:
        return self.model_type in CONV1D_MODEL_TYPES

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form (stable; :meth:`from_json` reads it back)."""
        return {
            "schema_version": MANIFEST_SCHEMA_VERSION,
            "config": self.config,
            "tensors": {
                name: {"dtype": dtype, "shape": list(shape)}
                for name, (dtype, shape) in sorted(self.tensors.items())
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BaseManifest:
        """Rebuild a manifest from :meth:`to_json` output.

        Raises:
            InvalidBaseModel: ``bad_manifest``.
        """
        config, tensors = data.get("config"), data.get("tensors")
        if data.get("schema_version") != MANIFEST_SCHEMA_VERSION:
            _fail("bad_manifest", "unsupported manifest schema_version")
        if not isinstance(config, dict) or not isinstance(tensors, dict):
            _fail("bad_manifest", "manifest needs 'config' and 'tensors' objects")
        parsed: dict[str, TensorSpec] = {}
        for name, spec in tensors.items():
            shape = spec.get("shape") if isinstance(spec, dict) else None
            dtype = spec.get("dtype") if isinstance(spec, dict) else None
            if (
                not isinstance(dtype, str)
                or not isinstance(shape, list)
                or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
            ):
                _fail("bad_manifest", "malformed tensor entry", tensor=str(name)[:200])
            parsed[str(name)] = (dtype, tuple(shape))
        return cls(tensors=parsed, config=dict(config))

    @cached_property
    def digest(self) -> str:
        canonical = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def manifest_from_parts(
    config: Mapping[str, Any], headers: list[SafetensorsHeader]
) -> BaseManifest:
    """Merge validated headers (one per shard) and a config into a manifest.

    Raises:
        InvalidBaseModel: ``bad_index`` when a tensor name appears in two headers.
    """
    tensors: dict[str, TensorSpec] = {}
    for header in headers:
        for name, info in header.tensors.items():
            if name in tensors:
                _fail("bad_index", "tensor present in more than one shard", tensor=name)
            tensors[name] = (info.dtype, info.shape)
    return BaseManifest(tensors=tensors, config=dict(config))


def _load_json(data: bytes, name: str, reason: str) -> dict[str, Any]:
    try:
        decoded = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        _fail(reason, f"{name} is not valid JSON", file=name)
    if not isinstance(decoded, dict):
        _fail(reason, f"{name} is not a JSON object", file=name)
    return decoded


def _read_all(src: ByteSource, name: str, limit: int) -> bytes:
    if src.size > limit:  # refuse before reading the bytes
        raise ForbiddenFile(
            f"{name} larger than {limit} bytes",
            reason="too_large",
            context={"file": name, "size": src.size, "limit": limit},
        )
    return src.read_at(0, src.size)


def read_base_sources(
    files: Mapping[str, ByteSource],
    *,
    max_header_bytes: int = MAX_HEADER_BYTES,
    max_tensors: int = MAX_TENSORS,
) -> BaseManifest:
    """Build a manifest from a base checkpoint's files (name -> source), reading headers only.

    Uses ``model.safetensors`` when present, else ``model.safetensors.index.json`` and its shards:
    every shard must exist, every tensor of the ``weight_map`` must be in the shard it names, and
    every tensor of a shard must be listed there.

    Raises:
        InvalidBaseModel: see the module docstring.
        ForbiddenFile: ``too_large`` for an oversized JSON file.
        CorruptSafetensors: a weights file fails the safetensors checks (``max_tensors`` applies
            to each file).
    """
    if "config.json" not in files:
        _fail("missing_config", "base checkpoint has no config.json", file="config.json")
    config = _load_json(
        _read_all(files["config.json"], "config.json", MAX_BASE_CONFIG_BYTES),
        "config.json",
        "bad_config",
    )
    if SINGLE_WEIGHTS in files:
        header = parse_header(
            files[SINGLE_WEIGHTS],
            file_name=SINGLE_WEIGHTS,
            max_header_bytes=max_header_bytes,
            max_tensors=max_tensors,
        )
        return _logical(manifest_from_parts(config, [header]), [(files[SINGLE_WEIGHTS], header)])
    if INDEX_NAME not in files:
        _fail("missing_weights", "no model.safetensors nor model.safetensors.index.json")
    index = _load_json(
        _read_all(files[INDEX_NAME], INDEX_NAME, MAX_INDEX_BYTES),
        INDEX_NAME,
        "bad_index",
    )
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        _fail("bad_index", "index has no weight_map object", file=INDEX_NAME)
    for tensor, shard in weight_map.items():
        if not isinstance(shard, str) or "/" in shard or "\\" in shard or shard in ("", ".", ".."):
            _fail("bad_index", "weight_map value is not a shard file name", tensor=tensor)
    headers: list[SafetensorsHeader] = []
    sources: list[tuple[ByteSource, SafetensorsHeader]] = []
    for shard in sorted(set(weight_map.values())):
        if shard not in files:
            _fail("missing_weights", "shard named by the index is missing", file=shard)
        header = parse_header(
            files[shard],
            file_name=shard,
            max_header_bytes=max_header_bytes,
            max_tensors=max_tensors,
        )
        for tensor in header.tensors:
            if weight_map.get(tensor) != shard:
                _fail("bad_index", "tensor not mapped to this shard", file=shard, tensor=tensor)
        headers.append(header)
        sources.append((files[shard], header))
    manifest = manifest_from_parts(config, headers)
    for tensor, shard in weight_map.items():
        if tensor not in manifest.tensors:
            _fail(
                "bad_index",
                "tensor listed in the index is not in its shard",
                file=shard,
                tensor=tensor,
            )
    return _logical(manifest, sources)


def _logical(
    manifest: BaseManifest, sources: list[tuple[ByteSource, SafetensorsHeader]]
) -> BaseManifest:
    """A quantized checkpoint's manifest keeps logical shapes (:mod:`.quantized`)."""
    tensors = logical_tensors(manifest.config, manifest.tensors, sources)
    return BaseManifest(tensors=tensors, config=manifest.config)


def read_base_dir(
    path: str | os.PathLike[str],
    *,
    max_header_bytes: int = MAX_HEADER_BYTES,
    max_tensors: int = MAX_TENSORS,
) -> BaseManifest:
    """Build a manifest from a local base checkpoint directory (see :func:`read_base_sources`).

    Raises:
        InvalidBaseModel: see the module docstring (``missing_config`` also when not a directory).
        CorruptSafetensors: a weights file fails the safetensors checks.
    """
    root = Path(path)
    if not root.is_dir():
        _fail("missing_config", "base checkpoint directory does not exist", path=str(root))
    files: dict[str, ByteSource] = {
        entry.name: FileSource(entry) for entry in root.iterdir() if entry.is_file()
    }
    return read_base_sources(files, max_header_bytes=max_header_bytes, max_tensors=max_tensors)
