"""NaN/Inf scan and all-zero detection over raw tensor bytes."""

from __future__ import annotations

import numpy as np
import pytest

from registry.errors import UnhealthyTensors
from registry.validation import BytesSource, parse_header, scan_tensors_health, tensor_is_all_zero

from .validation_builders import CountingSource, st_bytes

LIMIT = 1 << 20


def _scan(tensors: dict[str, np.ndarray], **kwargs: object) -> list[str]:
    src = BytesSource(st_bytes(tensors))
    return scan_tensors_health(src, parse_header(src), limit_bytes=LIMIT, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_scan_health_rejects_nan_or_inf(dtype: type[np.floating], bad: float) -> None:
    values = np.ones((4, 4), dtype=dtype)
    values[3, 2] = bad
    with pytest.raises(UnhealthyTensors) as info:
        _scan({"ok": np.ones(3, np.float32), "bad": values})
    assert info.value.reason == "nan_or_inf"
    assert info.value.context["tensor"] == "bad"


def test_scan_health_rejects_bf16_nan() -> None:
    # BF16 is stored as u16 bit patterns: 0x7FC0 is a quiet NaN, 0x3F80 is 1.0.
    bits = np.array([0x3F80, 0x7FC0], dtype="<u2").tobytes()
    header = b'{"t":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}'
    data = len(header).to_bytes(8, "little") + header + bits
    src = BytesSource(data)
    with pytest.raises(UnhealthyTensors):
        scan_tensors_health(src, parse_header(src), limit_bytes=LIMIT)


def test_scan_health_passes_finite_values_including_extremes() -> None:
    values = np.array([np.finfo(np.float32).max, np.finfo(np.float32).tiny, -0.0], np.float32)
    assert _scan({"t": values, "i": np.array([-1], np.int32)}) == []


def test_scan_health_finds_nan_in_a_later_chunk() -> None:
    values = np.zeros(4096, np.float32)
    values[-1] = np.nan
    src = BytesSource(st_bytes({"t": values}))
    with pytest.raises(UnhealthyTensors):
        scan_tensors_health(src, parse_header(src), limit_bytes=LIMIT, chunk_bytes=64)


def test_scan_health_skipped_over_limit_reads_no_data() -> None:
    values = np.full(1024, np.nan, np.float32)
    data = st_bytes({"t": values})
    src = CountingSource(data)
    header = parse_header(src)
    read_for_header = src.bytes_read
    warnings = scan_tensors_health(src, header, limit_bytes=1000)
    assert len(warnings) == 1
    assert "skipped" in warnings[0]
    assert src.bytes_read == read_for_header


def test_scan_health_warns_on_all_zero_checked_tensor() -> None:
    warnings = _scan(
        {"b": np.array([0.0, -0.0], np.float32), "a": np.ones(2, np.float32)},
        zero_check=["b", "a"],
    )
    assert len(warnings) == 1
    assert "b" in warnings[0]


def test_tensor_is_all_zero_detects_single_nonzero() -> None:
    values = np.zeros(1000, np.float16)
    src = BytesSource(
        st_bytes({"z": values, "nz": np.where(np.arange(1000) == 999, 1, 0).astype(np.float16)})
    )
    header = parse_header(src)
    assert tensor_is_all_zero(src, header, header.tensors["z"], chunk_bytes=64)
    assert not tensor_is_all_zero(src, header, header.tensors["nz"], chunk_bytes=64)
