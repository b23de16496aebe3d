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
* ``too_many_tensors`` - more than ``max_tensors`` entries (refused while scanning, before the
  rest of the header is decoded).
* ``too_many_metadata_entries`` - more than :data:`MAX_METADATA_ENTRIES` ``__metadata__`` entries
  (refused while scanning: a 55 MB header of 3.5 M entries costs milliseconds).
* ``too_many_dims`` - a shape with more than :data:`MAX_TENSOR_DIMS` dimensions (checked before
  the element count is multiplied out: 500 k dimensions took 203 s of bignum products).
* ``malformed_header_json`` - not UTF-8, not JSON, not an object, or wrong schema.
* ``duplicate_tensor_name`` - a tensor name appears twice in the header.
* ``unknown_dtype`` - a dtype outside the safetensors set.
* ``invalid_offsets`` - offsets not contiguous from 0 (gaps, overlaps, ``end < begin``).
* ``tensor_info_mismatch`` - ``END - BEGIN != numel * itemsize`` (or an overflowing or
  misaligned size).
* ``trailing_bytes`` - bytes after the last tensor's data (no polyglot files).

The JSON is walked by :mod:`registry.validation.safetensors_json`, which counts tensors and
metadata entries while it scans, so the counts above stop the work early.

Truncation and trailing bytes are told apart only after the header is fully validated: the
header fits in the file (else ``header_length_exceeds_file``), then ``8 + N + last END`` is
compared with the file size - larger means ``truncated``, smaller means ``trailing_bytes``.
"""

from __future__ import annotations

import math
import operator
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from registry.validation.safetensors_json import MAX_METADATA_ENTRIES as MAX_METADATA_ENTRIES
from registry.validation.safetensors_json import MAX_TENSORS as MAX_TENSORS
from registry.validation.safetensors_json import Obj, fail, scan_header
from registry.validation.source import ByteSource

MAX_HEADER_BYTES = 100_000_000
MAX_TENSOR_NAME_CHARS = 1024
#: Dimensions per shape: real tensors have at most 5-6 (conv3d, grouped experts).
MAX_TENSOR_DIMS = 32
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
_BY_OFFSETS = operator.itemgetter(3, 4)  # (begin, end) of an entry tuple


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


_new = object.__new__


def _tensor_info(name: str, dtype: str, shape: tuple[int, ...], begin: int, end: int) -> TensorInfo:
    """``TensorInfo(name, dtype, shape, begin, end)`` at a third of the cost (one per tensor of
    every header): a frozen dataclass's ``__init__`` sets each field through
    ``object.__setattr__``; this fills the instance's ``__dict__`` directly, as that would."""
    info: TensorInfo = _new(TensorInfo)
    fields = info.__dict__
    fields["name"] = name
    fields["dtype"] = dtype
    fields["shape"] = shape
    fields["begin"] = begin
    fields["end"] = end
    return info


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


def _strict_dict(obj: Any, what: str, file_name: str, tensor: str | None) -> dict[str, Any]:
    """Turn a nested ``Obj`` into a dict, rejecting duplicate keys as malformed."""
    if not isinstance(obj, Obj):
        fail("malformed_header_json", f"{what} is not a JSON object", file_name, tensor)
    out: dict[str, Any] = {}
    for key, value in obj:
        if key in out:
            fail("malformed_header_json", f"duplicate key {key!r} in {what}", file_name, tensor)
        out[key] = value
    return out


def _is_uint(value: Any) -> bool:
    # bool is an int subclass in Python; JSON true/false are not integers. (The header's values
    # come from json, so ``type(value) is int`` is the same test: the per-tensor loops use it.)
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _U64_MAX


#: A control character (C0 or DEL) anywhere in a tensor name: one C-level search per name.
_CONTROL_CHAR = re.compile("[\x00-\x1f\x7f]")


#: A name :func:`_check_name` accepts when it is ASCII and short enough: dotted components, none
#: empty, no control character (one match instead of its four checks).
_PLAIN_NAME = re.compile("[^\x00-\x1f\x7f.]+(?:\\.[^\x00-\x1f\x7f.]+)*\\Z")


def _check_name(name: str, file_name: str) -> None:
    shown = name[:80]
    if not name or len(name) > MAX_TENSOR_NAME_CHARS:
        fail("malformed_header_json", "tensor name empty or too long", file_name, shown)
    if _CONTROL_CHAR.search(name) is not None:
        fail("malformed_header_json", "control character in tensor name", file_name, shown)
    if not name.isascii():
        try:
            name.encode("utf-8")  # a lone surrogate from a \ud800 escape (the reference rejects it)
        except UnicodeEncodeError:
            fail("malformed_header_json", "tensor name is not valid Unicode", file_name, None)
    # An empty dotted component: what ``"" in name.split(".")`` finds, without the list.
    if name != "__metadata__" and (name[0] == "." or name[-1] == "." or ".." in name):
        fail("malformed_header_json", "empty component in tensor name", file_name, shown)


def _uints(values: Any) -> bool:
    """``values`` is a list of JSON integers in ``[0, 2**64)``."""
    if type(values) is not list:
        return False
    for value in values:  # noqa: SIM110 (a loop: all() over a generator costs twice as much)
        if type(value) is not int or value < 0 or value > _U64_MAX:
            return False
    return True


def _parse_entry(name: str, raw: Any, file_name: str) -> tuple[str, tuple[int, ...], int, int]:
    if type(raw) is Obj and len(raw) == 3:
        # The entry as every writer orders it, and sound: taken without building a dict.
        (k1, dtype), (k2, shape), (k3, offsets) = raw
        if (
            k1 == "dtype"
            and k2 == "shape"
            and k3 == "data_offsets"
            and type(dtype) is str
            and dtype in DTYPE_BITS
            and type(shape) is list
            and len(shape) <= MAX_TENSOR_DIMS
            and type(offsets) is list
            and len(offsets) == 2
            and _uints(shape)
            and _uints(offsets)
        ):
            return dtype, tuple(shape), offsets[0], offsets[1]
    entry = _strict_dict(raw, f"tensor entry {name!r}", file_name, name)
    if entry.keys() != _ENTRY_KEYS:
        fail(
            "malformed_header_json",
            f"tensor entry keys must be exactly {sorted(_ENTRY_KEYS)}",
            file_name,
            name,
        )
    dtype = entry["dtype"]
    if not isinstance(dtype, str):
        fail("malformed_header_json", "dtype is not a string", file_name, name)
    if dtype not in DTYPE_BITS:
        fail("unknown_dtype", f"unknown dtype {dtype[:32]!r}", file_name, name)
    shape = entry["shape"]
    if isinstance(shape, list) and len(shape) > MAX_TENSOR_DIMS:
        # Before anything multiplies the dimensions out (bignum products grow quadratically).
        fail("too_many_dims", f"more than {MAX_TENSOR_DIMS} dimensions", file_name, name)
    if not _uints(shape):
        fail("malformed_header_json", "shape is not a list of non-negative ints", file_name, name)
    offsets = entry["data_offsets"]
    if type(offsets) is not list or len(offsets) != 2 or not _uints(offsets):
        fail("malformed_header_json", "data_offsets is not [begin, end]", file_name, name)
    return dtype, tuple(shape), offsets[0], offsets[1]


def parse_header(
    src: ByteSource,
    *,
    file_name: str = "adapter_model.safetensors",
    max_header_bytes: int = MAX_HEADER_BYTES,
    max_tensors: int = MAX_TENSORS,
) -> SafetensorsHeader:
    """Parse and fully validate a safetensors header, reading only the prefix and the header.

    Invariants on success: tensor byte ranges tile ``[0, data_len)`` exactly, each range holds
    exactly ``numel * bits / 8`` bytes, and ``8 + header_len + data_len == src.size``.

    Raises:
        CorruptSafetensors: with one of the reasons listed in the module docstring.
    """
    size = src.size
    if size < 8:
        fail("truncated", "file shorter than the 8-byte header length", file_name)
    prefix = src.read_at(0, 8)
    if len(prefix) != 8:
        fail("truncated", "could not read the 8-byte header length", file_name)
    (header_len,) = struct.unpack("<Q", prefix)
    if header_len > max_header_bytes:
        fail("header_too_large", f"header length {header_len} > {max_header_bytes}", file_name)
    if 8 + header_len > size:
        fail("header_length_exceeds_file", "header length beyond end of file", file_name)
    raw = src.read_at(8, header_len)
    if len(raw) != header_len:
        fail("truncated", "header shorter than declared", file_name)

    metadata: dict[str, str] = {}
    entries: list[tuple[str, str, tuple[int, ...], int, int]] = []
    seen: set[str] = set()
    for name, value in scan_header(raw, file_name, max_tensors):
        if name in seen:
            fail("duplicate_tensor_name", "duplicate key in header", file_name, name[:80])
        seen.add(name)
        if name == "__metadata__":
            metadata = _parse_metadata(value, file_name)
            continue
        if not (len(name) <= MAX_TENSOR_NAME_CHARS and name.isascii() and _PLAIN_NAME.match(name)):
            _check_name(name, file_name)  # says which rule it breaks (or passes non-ASCII text)
        entries.append((name, *_parse_entry(name, value, file_name)))

    data_start = 8 + header_len
    _validate_layout(entries, file_name)
    data_len = max((e[4] for e in entries), default=0)
    if data_start + data_len > size:
        culprit = next((e[0] for e in entries if data_start + e[4] > size), None)
        fail("truncated", "data shorter than the offsets claim", file_name, culprit)
    if data_start + data_len < size:
        last = max(entries, key=lambda e: e[4])[0] if entries else None
        fail(
            "trailing_bytes",
            f"{size - data_start - data_len} bytes after the data",
            file_name,
            last,
        )

    tensors = {entry[0]: _tensor_info(*entry) for entry in entries}
    return SafetensorsHeader(
        tensors=tensors, metadata=metadata, header_len=header_len, data_start=data_start
    )


def _parse_metadata(value: Any, file_name: str) -> dict[str, str]:
    if value is None:
        return {}
    meta = _strict_dict(value, "__metadata__", file_name, None)
    for key, item in meta.items():
        if not isinstance(item, str):
            fail("malformed_header_json", f"__metadata__[{key[:40]!r}] is not a string", file_name)
    return meta


def _validate_layout(
    entries: list[tuple[str, str, tuple[int, ...], int, int]], file_name: str
) -> None:
    """Check offsets tile the buffer from 0 and each span equals the tensor's byte size."""
    expected_start = 0
    for name, dtype, shape, begin, end in sorted(entries, key=_BY_OFFSETS):
        if begin != expected_start or end < begin:
            fail("invalid_offsets", f"invalid offsets [{begin}, {end}]", file_name, name)
        bits = math.prod(shape) * DTYPE_BITS[dtype]
        if bits > _U64_MAX or bits % 8 != 0:
            fail("tensor_info_mismatch", "tensor size overflows or is misaligned", file_name, name)
        if end - begin != bits // 8:
            fail(
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
            fail("truncated", "short read inside tensor data", file_name, tensor.name)
        yield chunk
        pos += want
