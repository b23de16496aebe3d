"""Stream safetensors files one tensor at a time: read by offset, write with the header first.

Reading goes through the project's strict header parser
(:func:`registry.validation.safetensors.parse_header`), so a merge never trusts a header the
registry would refuse; a tensor is loaded alone (``pread`` of its byte range, ``torch.frombuffer``,
reshape), and a tensor that is only copied is never loaded: the kernel copies it file to file
(``copy_file_range``), or, where it cannot, it is streamed in bounded chunks.

Writing: :class:`StWriter` is given every output tensor's name, dtype and shape up front, so the
header (8-byte little-endian length, compact JSON with ``__metadata__`` first, padded with spaces
to a multiple of 8 as the ``safetensors`` library does) is written before the data; tensors then
follow one by one in the planned order and their byte counts are checked against the header.
Data offsets are contiguous from 0, in the order the tensors are written.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from registry.maths import require_torch
from registry.validation.safetensors import (
    DTYPE_BITS,
    SafetensorsHeader,
    TensorInfo,
    iter_tensor_chunks,
    parse_header,
)
from registry.validation.safetensors_json import fail
from registry.validation.source import FileSource

if TYPE_CHECKING:
    import torch

#: Bytes per read when a tensor is copied without being loaded.
COPY_CHUNK_BYTES = 8 * 1024 * 1024

#: safetensors dtype -> torch dtype attribute name (the dtypes a merge may load).
TORCH_DTYPES: dict[str, str] = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "U16": "uint16",
    "U32": "uint32",
    "U64": "uint64",
    "BOOL": "bool",
    "F8_E5M2": "float8_e5m2",
    "F8_E4M3": "float8_e4m3fn",
    "C64": "complex64",
}
#: The dtypes a ``dtype=float32|bfloat16|float16`` merge casts ("floating" tensors).
FLOAT_DTYPES: frozenset[str] = frozenset({"F64", "F32", "F16", "BF16"})


def torch_dtype(st_dtype: str) -> torch.dtype:
    """The torch dtype of a safetensors dtype name (``ValueError`` for one torch cannot load)."""
    require_torch()
    import torch

    name = TORCH_DTYPES.get(st_dtype)
    if name is None or not hasattr(torch, name):
        raise ValueError(f"cannot load safetensors dtype {st_dtype} with torch")
    dtype: torch.dtype = getattr(torch, name)
    return dtype


class StFile:
    """A safetensors file opened for random access: its validated header and a byte source."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.source = FileSource(path)
        self.header: SafetensorsHeader = parse_header(self.source, file_name=path.name)

    @property
    def tensors(self) -> dict[str, TensorInfo]:
        """Tensors in header order."""
        return self.header.tensors

    def in_data_order(self) -> list[TensorInfo]:
        return sorted(self.header.tensors.values(), key=lambda t: t.begin)

    def iter_chunks(self, name: str, chunk_bytes: int = COPY_CHUNK_BYTES) -> Iterable[bytes]:
        info = self.header.tensors[name]
        return iter_tensor_chunks(
            self.source, self.header, info, chunk_bytes=chunk_bytes, file_name=self.path.name
        )

    def load(self, name: str, rows: tuple[int, int] | None = None) -> torch.Tensor:
        """Load one tensor, or its rows ``[start, stop)`` along the first axis (a fresh, writable
        CPU tensor of the stored dtype)."""
        require_torch()
        import torch

        info = self.header.tensors[name]
        dtype = torch_dtype(info.dtype)
        shape, begin, nbytes = list(info.shape), info.begin, info.nbytes
        if rows is not None:
            start, stop = rows
            if not 0 <= start <= stop <= shape[0]:
                raise ValueError(f"rows {rows} outside {name} {shape}")
            row_bytes = nbytes // shape[0]
            begin, nbytes, shape[0] = (
                begin + start * row_bytes,
                (stop - start) * row_bytes,
                stop - start,
            )
        if nbytes == 0:
            return torch.empty(shape, dtype=dtype)
        data = bytearray(nbytes)  # read straight into the tensor's buffer: one copy
        with self.path.open("rb") as f:
            f.seek(self.header.data_start + begin)
            if f.readinto(data) != nbytes:
                fail("truncated", "short read inside tensor data", self.path.name, name)
        return torch.frombuffer(data, dtype=dtype).reshape(shape)


@dataclass(frozen=True)
class OutTensor:
    """One planned output tensor."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPE_BITS[self.dtype] // 8


def header_bytes(
    header_order: list[OutTensor], data_order: list[str], metadata: dict[str, str]
) -> bytes:
    """The length prefix and padded JSON header for tensors laid out in ``data_order``."""
    by_name = {t.name: t for t in header_order}
    offsets: dict[str, tuple[int, int]] = {}
    pos = 0
    for name in data_order:
        end = pos + by_name[name].nbytes
        offsets[name] = (pos, end)
        pos = end
    doc: dict[str, Any] = {"__metadata__": metadata} if metadata else {}
    for t in header_order:
        begin, end = offsets[t.name]
        doc[t.name] = {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [begin, end]}
    raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw


class StWriter:
    """Write a safetensors file whose header is known up front, then its tensors in order.

    ``header_order`` fixes the JSON order, ``data_order`` (names) the order of the data (and of
    the ``write``/``copy`` calls). :meth:`close` refuses a file with tensors left unwritten.
    """

    def __init__(
        self,
        path: Path,
        header_order: list[OutTensor],
        data_order: list[str],
        metadata: dict[str, str],
    ) -> None:
        if sorted(data_order) != sorted(t.name for t in header_order):
            raise ValueError("data order and header name different tensors")
        self.path = path
        self._planned = {t.name: t for t in header_order}
        self._queue = list(reversed(data_order))
        self._file: IO[bytes] = path.open("xb")
        self._file.write(header_bytes(header_order, data_order, metadata))

    def _next(self, name: str) -> OutTensor:
        if not self._queue or self._queue[-1] != name:
            expected = self._queue[-1] if self._queue else None
            raise ValueError(f"tensor {name!r} written out of order (expected {expected!r})")
        self._queue.pop()
        return self._planned[name]

    def write(self, name: str, tensor: torch.Tensor) -> None:
        """Write a tensor's bytes; its dtype and shape must be the planned ones."""
        self.write_rows(name, [tensor])

    def write_rows(self, name: str, blocks: Iterable[torch.Tensor]) -> None:
        """Write a tensor as consecutive blocks of rows (first axis); together they must have
        the planned dtype and shape."""
        planned = self._next(name)
        rows = 0
        for block in blocks:
            actual = (st_dtype(block), tuple(block.shape[1:]))
            if actual != (planned.dtype, planned.shape[1:]):
                raise ValueError(f"{name}: {actual} differs from the planned header entry")
            rows += block.shape[0] if block.dim() else 1
            flat = block.detach().contiguous().reshape(-1)
            if flat.numel():
                self._file.write(flat.view(require_torch().uint8).numpy().data)
        if rows != (planned.shape[0] if planned.shape else 1):
            raise ValueError(f"{name}: {rows} rows written, {list(planned.shape)} planned")

    def copy(self, name: str, src: StFile, source_name: str | None = None) -> None:
        """Copy a tensor byte for byte from ``src`` in bounded chunks (never loaded)."""
        planned = self._next(name)
        info = src.tensors[source_name or name]
        if (info.dtype, info.shape) != (planned.dtype, planned.shape):
            raise ValueError(f"{name}: source entry differs from the planned header entry")
        if info.nbytes and not self._kernel_copy(src, info):
            for chunk in src.iter_chunks(info.name):
                self._file.write(chunk)

    def _kernel_copy(self, src: StFile, info: TensorInfo) -> bool:
        """Copy ``info``'s bytes file to file inside the kernel (``copy_file_range``): no buffer
        in this process and no round trip through it. False where the kernel or the file
        systems cannot, before anything was written (the caller then copies in chunks)."""
        self._file.flush()
        out = self._file.fileno()
        start = os.lseek(out, 0, os.SEEK_CUR)
        pos, end = src.header.data_start + info.begin, src.header.data_start + info.end
        with src.path.open("rb") as f:
            while pos < end:
                try:
                    n = os.copy_file_range(f.fileno(), out, min(end - pos, 1 << 30), pos)
                except OSError:
                    n = -1
                if n <= 0:  # unsupported (or the source shrank): undo and let chunks decide
                    os.ftruncate(out, start)
                    os.lseek(out, start, os.SEEK_SET)
                    return False
                pos += n
        return True

    def close(self) -> None:
        if self._file.closed:
            return
        self._file.close()
        if self._queue:
            raise ValueError(f"{len(self._queue)} planned tensor(s) not written to {self.path}")

    def __enter__(self) -> StWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
        else:
            self._file.close()


def st_dtype(tensor: torch.Tensor) -> str:
    """The safetensors dtype name of a torch tensor."""
    name = str(tensor.dtype).removeprefix("torch.")
    for st, torch_name in TORCH_DTYPES.items():
        if torch_name == name:
            return st
    raise ValueError(f"no safetensors dtype for {tensor.dtype}")
