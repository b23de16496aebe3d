"""Check the index data of sparse methods (``SPARSE_RULES`` of ``methods.peft_sparse``).

Runs after :func:`~registry.validation.methods.engine.check_method` has checked names and
shapes. Header facts first: index tensors hold integers and value tensors floats
(``inconsistent_adapter`` ``dtype_mismatch``), one index per value (``shape_mismatch``). Then the
index *data*, streamed in chunks of :data:`CHUNK_BYTES` (memory stays bounded) and never more
than ``max_index_bytes`` in all (:data:`DEFAULT_MAX_INDEX_BYTES`): an adapter whose index tensors
are larger than the budget is refused from the header's sizes before any index byte is read
(``forbidden_file`` ``too_large``), never accepted unchecked; within the budget but above the
validator's scan limit (set below the budget: the header-only path) the data is not read and a
warning says so (:func:`check_sparse_data`). Indices below zero or, with a base,
outside the base weight (``incompatible_base`` ``index_out_of_range``; without a base only the
sign is checked, as ``inconsistent_adapter`` ``index_out_of_range``); for formats that promise
it, strictly increasing order (``inconsistent_adapter`` ``unsorted_indices`` or
``duplicate_indices``). Indices kept in the config (TRAINABLE_TOKENS' ``token_indices``) are
checked the same way without reading any tensor data.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt

from registry.errors import (
    ForbiddenFile,
    IncompatibleBase,
    InconsistentAdapter,
    InvalidAdapterConfig,
)
from registry.validation.checks_base import base_tensor, is_conv1d
from registry.validation.config import AdapterConfig
from registry.validation.layout import PEFT_PREFIX
from registry.validation.manifest import BaseManifest
from registry.validation.methods.peft_sparse import SPARSE_RULES, SparseRule
from registry.validation.safetensors import SafetensorsHeader, TensorInfo, iter_tensor_chunks
from registry.validation.source import ByteSource

#: At most this many bytes of index data are read per adapter (about 16 M int32 indices).
DEFAULT_MAX_INDEX_BYTES = 64 * 1024 * 1024
#: Bytes per read: a multiple of every integer itemsize, so no index straddles two chunks.
CHUNK_BYTES = 1 << 20
FILE = "adapter_model.safetensors"
INT_NUMPY: dict[str, str] = {
    "I8": "<i1",
    "I16": "<i2",
    "I32": "<i4",
    "I64": "<i8",
    "U8": "<u1",
    "U16": "<u2",
    "U32": "<u4",
    "U64": "<u8",
}
VALUE_DTYPES = frozenset({"F16", "BF16", "F32", "F64"})


def _fail(
    error: type[InconsistentAdapter] | type[IncompatibleBase],
    reason: str,
    detail: str,
    **context: Any,
) -> NoReturn:
    raise error(detail, reason=reason, context={"file": FILE, **context})


@dataclass(frozen=True)
class Segment:
    """Elements ``[start, stop)`` of an index tensor must be below ``bound`` (None: unknown)."""

    start: int
    stop: int
    bound: int | None


@dataclass(frozen=True)
class IndexJob:
    """One index tensor to read, with the bounds of its elements."""

    module: str
    tensor: TensorInfo
    segments: tuple[Segment, ...]
    ordered: bool


def _modules(header: SafetensorsHeader, suffix: str) -> dict[str, TensorInfo]:
    """Module path -> its tensor ending in ``.suffix`` (names already checked by the engine)."""
    tail = "." + suffix
    return {
        name[len(PEFT_PREFIX) : -len(tail)]: info
        for name, info in header.tensors.items()
        if name.startswith(PEFT_PREFIX) and name.endswith(tail)
    }


def _base_shape(
    cfg: AdapterConfig, base: BaseManifest | None, module: str
) -> tuple[int, ...] | None:
    if base is None:
        return None
    spec = base_tensor(base, module + ".weight")
    return None if spec is None else spec[1]


def _segments(
    cfg: AdapterConfig, rule: SparseRule, base: BaseManifest | None, module: str, count: int
) -> tuple[Segment, ...]:
    shape = _base_shape(cfg, base, module)
    if rule.layout == "flat":
        return (Segment(0, count, None if shape is None else math.prod(shape)),)
    # rows_cols: [2, nnz] of an nn.Linear weight [out, in] (a Conv1D stores it [in, out])
    rows = cols = None
    if shape is not None and len(shape) == 2:
        assert base is not None
        conv1d = is_conv1d(cfg, base, module)
        rows, cols = (shape[1], shape[0]) if conv1d else (shape[0], shape[1])
    return (Segment(0, count, rows), Segment(count, 2 * count, cols))


def _check_dtypes(
    rule: SparseRule, module: str, values: TensorInfo, indices: TensorInfo | None
) -> None:
    if values.dtype not in VALUE_DTYPES:
        _fail(
            InconsistentAdapter,
            "dtype_mismatch",
            f"{rule.values} must hold floats",
            module=module,
            tensor=values.name,
            actual=values.dtype,
        )
    if indices is not None and indices.dtype not in INT_NUMPY:
        _fail(
            InconsistentAdapter,
            "dtype_mismatch",
            f"{rule.indices} must hold integers",
            module=module,
            tensor=indices.name,
            actual=indices.dtype,
        )


def _count(rule: SparseRule, indices: TensorInfo) -> int:
    if rule.layout == "rows_cols":
        return indices.shape[1] if len(indices.shape) == 2 else -1
    return indices.numel if len(indices.shape) == 1 else -1


def plan_index_checks(
    cfg: AdapterConfig, rule: SparseRule, header: SafetensorsHeader, base: BaseManifest | None
) -> list[IndexJob]:
    """The header checks of every module (dtypes, counts) and the index tensors left to read.

    Raises:
        InconsistentAdapter: ``dtype_mismatch``, ``shape_mismatch``.
    """
    values = _modules(header, rule.values)
    indices = _modules(header, rule.indices) if rule.indices else {}
    jobs: list[IndexJob] = []
    for module, value in sorted(values.items()):
        index = indices.get(module)
        _check_dtypes(rule, module, value, index)
        if index is None:
            continue  # not saved (SUPERTUNING without precomputed indices): the engine allowed it
        count = _count(rule, index)
        if count != value.numel or len(value.shape) != 1:
            _fail(
                InconsistentAdapter,
                "shape_mismatch",
                f"{rule.indices} holds {count} indices for {value.numel} values",
                module=module,
                tensor=index.name,
                expected=value.numel,
                actual=count,
            )
        segments = _segments(cfg, rule, base, module, count)
        jobs.append(IndexJob(module, index, segments, rule.ordered))
    return jobs


def _bad_position(mask: npt.NDArray[np.bool_]) -> int | None:
    return int(np.argmax(mask)) if bool(mask.any()) else None


class _Reader:
    """Checks one index tensor chunk by chunk, remembering the last index for the order check."""

    def __init__(self, job: IndexJob) -> None:
        self.job = job
        self.last: int | None = None

    def chunk(self, start: int, data: npt.NDArray[Any]) -> None:
        job = self.job
        stop = start + len(data)
        for seg in job.segments:
            lo, hi = max(start, seg.start), min(stop, seg.stop)
            if lo < hi:
                self._range(data[lo - start : hi - start], lo, seg)
        if job.ordered and len(data):
            self._order(data, start)

    def _range(self, part: npt.NDArray[Any], offset: int, seg: Segment) -> None:
        where = _bad_position(part < 0)
        error: type[InconsistentAdapter] | type[IncompatibleBase] = InconsistentAdapter
        if where is None and seg.bound is not None:
            where = _bad_position(part >= seg.bound)
            error = IncompatibleBase
        if where is not None:
            position = offset + where
            _fail(
                error,
                "index_out_of_range",
                f"index {int(part[where])} at position {position} is "
                + ("negative" if error is InconsistentAdapter else f"not below {seg.bound}"),
                module=self.job.module,
                tensor=self.job.tensor.name,
                position=position,
                index=int(part[where]),
                bound=seg.bound,
            )

    def _order(self, data: npt.NDArray[Any], start: int) -> None:
        first = int(data[0])
        steps = np.diff(data.astype(np.int64, copy=False)) if len(data) > 1 else np.zeros(0)
        if self.last is not None and first <= self.last:
            self._unordered(start, first, first == self.last)
        where = _bad_position(steps <= 0)
        if where is not None:
            self._unordered(start + where + 1, int(data[where + 1]), bool(steps[where] == 0))
        self.last = int(data[-1])

    def _unordered(self, position: int, index: int, duplicate: bool) -> NoReturn:
        reason = "duplicate_indices" if duplicate else "unsorted_indices"
        _fail(
            InconsistentAdapter,
            reason,
            f"index {index} at position {position}: indices must be strictly increasing",
            module=self.job.module,
            tensor=self.job.tensor.name,
            position=position,
        )


def _chunks(
    src: ByteSource, header: SafetensorsHeader, job: IndexJob, chunk_bytes: int
) -> Iterator[tuple[int, npt.NDArray[Any]]]:
    dtype = np.dtype(INT_NUMPY[job.tensor.dtype])
    start = 0
    for raw in iter_tensor_chunks(src, header, job.tensor, chunk_bytes=chunk_bytes, file_name=FILE):
        data = np.frombuffer(raw, dtype=dtype)
        yield start, data
        start += len(data)


def read_indices(
    src: ByteSource,
    header: SafetensorsHeader,
    jobs: Sequence[IndexJob],
    *,
    max_index_bytes: int,
    chunk_bytes: int = CHUNK_BYTES,
) -> None:
    """Stream every job's index tensor (at most ``max_index_bytes`` in all, refused up front).

    Raises:
        ForbiddenFile: ``too_large``.
        InconsistentAdapter: ``index_out_of_range`` (negative), ``unsorted_indices``,
            ``duplicate_indices``.
        IncompatibleBase: ``index_out_of_range``.
    """
    if chunk_bytes <= 0 or chunk_bytes % 8:
        raise ValueError("chunk_bytes must be a positive multiple of 8")
    total = sum(job.tensor.nbytes for job in jobs)
    if total > max_index_bytes:
        raise ForbiddenFile(
            f"{total} bytes of sparse indices exceed the index budget of {max_index_bytes} bytes;"
            " they would have to be read to be checked",
            reason="too_large",
            context={"file": FILE, "index_bytes": total, "limit": max_index_bytes},
        )
    for job in jobs:
        reader = _Reader(job)
        for start, data in _chunks(src, header, job, chunk_bytes):
            reader.chunk(start, data)


def check_config_indices(
    cfg: AdapterConfig, rule: SparseRule, header: SafetensorsHeader, base: BaseManifest | None
) -> None:
    """TRAINABLE_TOKENS: the config's token indices, one delta row each, within the base vocab.

    Raises:
        InvalidAdapterConfig: ``schema``.
        InconsistentAdapter: ``shape_mismatch``.
        IncompatibleBase: ``index_out_of_range``.
    """
    raw = cfg.raw.get(rule.config_key)
    tokens: list[int] = raw if isinstance(raw, list) else []
    ok = bool(tokens) and all(type(t) is int and t >= 0 for t in tokens)
    if not ok:
        raise InvalidAdapterConfig(
            f"{rule.config_key} must be a non-empty list of non-negative integers",
            reason="schema",
            context={"file": "adapter_config.json", "field": rule.config_key},
        )
    for module, value in sorted(_modules(header, rule.values).items()):
        _check_dtypes(rule, module, value, None)
        rows = value.shape[0] if value.shape else -1
        if rows != len(tokens):
            _fail(
                InconsistentAdapter,
                "shape_mismatch",
                f"{rule.values} has {rows} rows for {len(tokens)} {rule.config_key}",
                module=module,
                tensor=value.name,
                expected=len(tokens),
                actual=rows,
            )
        shape = _base_shape(cfg, base, module)
        if shape is not None and max(tokens) >= shape[0]:
            _fail(
                IncompatibleBase,
                "index_out_of_range",
                f"token index {max(tokens)} outside the base vocabulary of {shape[0]}",
                module=module,
                tensor=value.name,
                index=max(tokens),
                bound=shape[0],
            )


def check_sparse_data(
    cfg: AdapterConfig,
    header: SafetensorsHeader,
    src: ByteSource,
    base: BaseManifest | None,
    *,
    max_index_bytes: int = DEFAULT_MAX_INDEX_BYTES,
    read_limit_bytes: int | None = None,
) -> list[str]:
    """The index checks of a sparse method (see the module docstring); nothing for other methods.

    ``read_limit_bytes`` (the validator's scan limit; None: no limit, for the merge, which reads
    every index anyway): index data larger than it, though within ``max_index_bytes``, is not read,
    like the health scan of data above the scan limit; its header checks still run, and the
    returned warning says what was left unchecked. With the default settings both limits are
    64 MiB, so nothing within the budget goes unread.
    """
    rule = SPARSE_RULES.get(cfg.peft_type)
    if rule is None:
        return []
    if rule.layout == "config":
        check_config_indices(cfg, rule, header, base)
        return []
    jobs = plan_index_checks(cfg, rule, header, base)
    total = sum(job.tensor.nbytes for job in jobs)
    if read_limit_bytes is not None and read_limit_bytes < total <= max_index_bytes:
        unchecked = "ranges and order" if rule.ordered else "ranges"
        return [
            f"{rule.indices}: {total} bytes of indices above the scan limit of {read_limit_bytes}"
            f" bytes were not read; their dtypes and counts are checked, their {unchecked} not"
        ]
    read_indices(src, header, jobs, max_index_bytes=max_index_bytes)
    return []
