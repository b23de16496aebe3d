"""Strict safetensors header parser (no torch, no ``safetensors`` package).

Reads only the 8-byte length prefix and the JSON header: a 1 GB file is validated by reading
about the header's size. Applies every check of the reference reader (``safetensors`` 0.8.0,
``Metadata::validate``) and closes the leniencies a second parser could disagree on: the header
must start with ``{``, duplicate keys are rejected (no parser differential), unknown keys inside a
tensor entry and ``NaN``/``Infinity`` JSON constants are rejected, and tensor names are limited to
printable text of at most 1024 characters with no empty dotted components.

Every error is :class:`~registry.errors.CorruptSafetensors` with ``context["file"]`` and, when one
is at fault, ``context["tensor"]``. Reasons:

* ``truncated`` - file shorter than 8 bytes, or the byte buffer is shorter than the offsets claim.
* ``header_too_large`` - the declared header length exceeds the limit (checked before reading).
* ``header_length_exceeds_file`` - ``8 + N`` is beyond the end of the file.
* ``malformed_header_json`` - not UTF-8, not JSON, not an object, or wrong schema.
* ``duplicate_tensor_name`` - a tensor name appears twice in the header.
* ``unknown_dtype`` - a dtype outside the safetensors set.
* ``invalid_offsets`` - offsets not contiguous from 0 (gaps, overlaps, ``end < begin``).
* ``tensor_info_mismatch`` - ``END - BEGIN != numel * itemsize`` (or an overflowing or
  misaligned size).
* ``trailing_bytes`` - bytes after the last tensor's data (no polyglot files).

Truncation and trailing bytes are told apart only after the header is fully validated: the
header fits in the file (else ``header_length_exceeds_file``), then ``8 + N + last END`` is
compared with the file size - larger means ``truncated``, smaller means ``trailing_bytes``.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

from registry.errors import CorruptSafetensors
from registry.validation.source import ByteSource

MAX_HEADER_BYTES = 100_000_000
MAX_TENSOR_NAME_CHARS = 1024
_U64_MAX = (1 << 64) - 1

#: Bit size of each safetensors dtype (``safetensors/src/tensor.rs``).
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "F64": 64,
    "I64": 64,
    "U64": 64,
    "C64": 64,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
}

_ENTRY_KEYS = frozenset({"dtype", "shape", "data_offsets"})


@dataclass(frozen=True)
class TensorInfo:
    """One tensor entry of a validated header; ``begin``/``end`` are relative to the data start."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


@dataclass(frozen=True)
class SafetensorsHeader:
    """A validated header: tensors in file (header) order, string metadata, layout sizes."""

    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]
    header_len: int
    data_start: int

    @property
    def data_len(self) -> int:
        """Bytes of the data buffer (= the last tensor's ``end``)."""
        return max((t.end for t in self.tensors.values()), default=0)


class _Obj(list[tuple[str, Any]]):
    """A JSON object kept as its ordered key/value pairs so duplicates stay visible."""


def _fail(reason: str, detail: str, file_name: str, tensor: str | None = None) -> NoReturn:
    context: dict[str, Any] = {"file": file_name}
    if tensor is not None:
        context["tensor"] = tensor
    raise CorruptSafetensors(detail, reason=reason, context=context)


def _reject_constant(value: str) -> NoReturn:
    raise ValueError(f"non-standard JSON constant {value}")


def _strict_dict(obj: Any, what: str, file_name: str, tensor: str | None) -> dict[str, Any]:
    """Turn a nested ``_Obj`` into a dict, rejecting duplicate keys as malformed."""
    if not isinstance(obj, _Obj):
        _fail("malformed_header_json", f"{what} is not a JSON object", file_name, tensor)
    out: dict[str, Any] = {}
    for key, value in obj:
        if key in out:
            _fail("malformed_header_json", f"duplicate key {key!r} in {what}", file_name, tensor)
        out[key] = value
    return out


def _is_uint(value: Any) -> bool:
    # bool is an int subclass in Python; JSON true/false are not integers.
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _U64_MAX


def _check_name(name: str, file_name: str) -> None:
    shown = name[:80]
    if not name or len(name) > MAX_TENSOR_NAME_CHARS:
        _fail("malformed_header_json", "tensor name empty or too long", file_name, shown)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        _fail("malformed_header_json", "control character in tensor name", file_name, shown)
    if name != "__metadata__" and "" in name.split("."):
        _fail("malformed_header_json", "empty component in tensor name", file_name, shown)


def _parse_entry(name: str, raw: Any, file_name: str) -> tuple[str, tuple[int, ...], int, int]:
    entry = _strict_dict(raw, f"tensor entry {name!r}", file_name, name)
    if set(entry) != _ENTRY_KEYS:
        _fail(
            "malformed_header_json",
            f"tensor entry keys must be exactly {sorted(_ENTRY_KEYS)}",
            file_name,
            name,
        )
    dtype = entry["dtype"]
    if not isinstance(dtype, str):
        _fail("malformed_header_json", "dtype is not a string", file_name, name)
    if dtype not in DTYPE_BITS:
        _fail("unknown_dtype", f"unknown dtype {dtype[:32]!r}", file_name, name)
    shape = entry["shape"]
    if not isinstance(shape, list) or not all(_is_uint(d) for d in shape):
        _fail("malformed_header_json", "shape is not a list of non-negative ints", file_name, name)
    offsets = entry["data_offsets"]
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_uint(o) for o in offsets):
        _fail("malformed_header_json", "data_offsets is not [begin, end]", file_name, name)
    return dtype, tuple(shape), offsets[0], offsets[1]


def _decode_header(raw: bytes, file_name: str) -> _Obj:
    # The spec says the header MUST start with '{' (the reference reader tolerates whitespace).
    if not raw.startswith(b"{"):
        _fail("malformed_header_json", "header does not start with '{'", file_name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        _fail("malformed_header_json", "header is not valid UTF-8", file_name)
    try:
        decoded = json.loads(text, object_pairs_hook=_Obj, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        _fail("malformed_header_json", f"header is not valid JSON: {str(exc)[:120]}", file_name)
    if not isinstance(decoded, _Obj):
        _fail("malformed_header_json", "header is not a JSON object", file_name)
    return decoded


def parse_header(
    src: ByteSource,
    *,
    file_name: str = "adapter_model.safetensors",
    max_header_bytes: int = MAX_HEADER_BYTES,
) -> SafetensorsHeader:
    """Parse and fully validate a safetensors header, reading only the prefix and the header.

    Invariants on success: tensor byte ranges tile ``[0, data_len)`` exactly, each range holds
    exactly ``numel * bits / 8`` bytes, and ``8 + header_len + data_len == src.size``.

    Raises:
        CorruptSafetensors: with one of the reasons listed in the module docstring.
    """
    size = src.size
    if size < 8:
        _fail("truncated", "file shorter than the 8-byte header length", file_name)
    prefix = src.read_at(0, 8)
    if len(prefix) != 8:
        _fail("truncated", "could not read the 8-byte header length", file_name)
    (header_len,) = struct.unpack("<Q", prefix)
    if header_len > max_header_bytes:
        _fail("header_too_large", f"header length {header_len} > {max_header_bytes}", file_name)
    if 8 + header_len > size:
        _fail("header_length_exceeds_file", "header length beyond end of file", file_name)
    raw = src.read_at(8, header_len)
    if len(raw) != header_len:
        _fail("truncated", "header shorter than declared", file_name)

    metadata: dict[str, str] = {}
    entries: list[tuple[str, str, tuple[int, ...], int, int]] = []
    seen: set[str] = set()
    for name, value in _decode_header(raw, file_name):
        if name in seen:
            _fail("duplicate_tensor_name", "duplicate key in header", file_name, name[:80])
        seen.add(name)
        if name == "__metadata__":
            metadata = _parse_metadata(value, file_name)
            continue
        _check_name(name, file_name)
        entries.append((name, *_parse_entry(name, value, file_name)))

    data_start = 8 + header_len
    _validate_layout(entries, file_name)
    data_len = max((e[4] for e in entries), default=0)
    if data_start + data_len > size:
        culprit = next((e[0] for e in entries if data_start + e[4] > size), None)
        _fail("truncated", "data shorter than the offsets claim", file_name, culprit)
    if data_start + data_len < size:
        last = max(entries, key=lambda e: e[4])[0] if entries else None
        _fail(
            "trailing_bytes",
            f"{size - data_start - data_len} bytes after the data",
            file_name,
            last,
        )

    tensors = {
        name: TensorInfo(name=name, dtype=dtype, shape=shape, begin=begin, end=end)
        for name, dtype, shape, begin, end in entries
    }
    return SafetensorsHeader(
        tensors=tensors, metadata=metadata, header_len=header_len, data_start=data_start
    )


def _parse_metadata(value: Any, file_name: str) -> dict[str, str]:
    if value is None:
        return {}
    meta = _strict_dict(value, "__metadata__", file_name, None)
    for key, item in meta.items():
        if not isinstance(item, str):
            _fail("malformed_header_json", f"__metadata__[{key[:40]!r}] is not a string", file_name)
    return meta


def _validate_layout(
    entries: list[tuple[str, str, tuple[int, ...], int, int]], file_name: str
) -> None:
    """Check offsets tile the buffer from 0 and each span equals the tensor's byte size."""
    expected_start = 0
    for name, dtype, shape, begin, end in sorted(entries, key=lambda e: (e[3], e[4])):
        if begin != expected_start or end < begin:
            _fail("invalid_offsets", f"invalid offsets [{begin}, {end}]", file_name, name)
        bits = math.prod(shape) * DTYPE_BITS[dtype]
        if bits > _U64_MAX or bits % 8 != 0:
            _fail("tensor_info_mismatch", "tensor size overflows or is misaligned", file_name, name)
        if end - begin != bits // 8:
            _fail(
                "tensor_info_mismatch",
                f"span {end - begin} != {bits // 8} bytes for {dtype}{list(shape)}",
                file_name,
                name,
            )
        expected_start = end


def iter_tensor_chunks(
    src: ByteSource,
    header: SafetensorsHeader,
    tensor: TensorInfo,
    *,
    chunk_bytes: int,
    file_name: str = "adapter_model.safetensors",
) -> Iterator[bytes]:
    """Yield a tensor's bytes in chunks of at most ``chunk_bytes`` (a multiple of 8 is advised).

    Raises:
        CorruptSafetensors: ``truncated`` if the source returns fewer bytes than the header claims.
    """
    pos = header.data_start + tensor.begin
    end = header.data_start + tensor.end
    while pos < end:
        want = min(chunk_bytes, end - pos)
        chunk = src.read_at(pos, want)
        if len(chunk) != want:
            _fail("truncated", "short read inside tensor data", file_name, tensor.name)
        yield chunk
        pos += want
