"""Strict safetensors header parser: every corrupt reason, on hand-made bytes."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pytest

from registry.errors import CorruptSafetensors
from registry.validation import BytesSource, parse_header

from .validation_builders import CountingSource, entries, raw_safetensors, st_bytes


def _reason(data: bytes, **kwargs: Any) -> str:
    with pytest.raises(CorruptSafetensors) as info:
        parse_header(BytesSource(data), **kwargs)
    return info.value.reason


def test_parse_header_valid_library_file_reports_tensors_in_order() -> None:
    data = st_bytes({"b": np.zeros((2, 3), np.float32), "a": np.zeros(4, np.float16)})
    header = parse_header(BytesSource(data))
    assert set(header.tensors) == {"a", "b"}
    assert header.tensors["b"].shape == (2, 3)
    assert header.tensors["b"].numel == 6
    assert header.tensors["b"].nbytes == 24
    assert header.tensors["a"].dtype == "F16"
    assert header.metadata == {"format": "pt"}
    assert header.data_start == 8 + header.header_len
    assert header.data_start + header.data_len == len(data)


def test_parse_header_valid_keeps_header_order_not_offset_order() -> None:
    header = {
        "z": {"dtype": "U8", "shape": [2], "data_offsets": [2, 4]},
        "y": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
    }
    parsed = parse_header(BytesSource(raw_safetensors(header, bytes(4))))
    assert list(parsed.tensors) == ["z", "y"]


def test_parse_header_valid_with_scalar_and_empty_tensors() -> None:
    header, data = entries(("s", "F32", [], 4), ("e", "F32", [0, 3], 0))
    parsed = parse_header(BytesSource(raw_safetensors(header, data)))
    assert parsed.tensors["s"].numel == 1
    assert parsed.tensors["e"].nbytes == 0


def test_parse_header_valid_with_space_padding_and_no_tensors() -> None:
    parsed = parse_header(BytesSource(raw_safetensors(b"{}      ")))
    assert parsed.tensors == {}
    assert parsed.header_len == 8


@pytest.mark.parametrize("size", [0, 1, 7])
def test_parse_header_truncated_when_shorter_than_prefix(size: int) -> None:
    assert _reason(bytes(size)) == "truncated"


def test_parse_header_truncated_when_data_shorter_than_offsets() -> None:
    header, data = entries(("a", "F32", [4], 16), ("b", "F32", [4], 16))
    with pytest.raises(CorruptSafetensors) as info:
        parse_header(BytesSource(raw_safetensors(header, data[:-1])))
    assert info.value.reason == "truncated"
    assert info.value.context["tensor"] == "b"
    assert info.value.context["file"] == "adapter_model.safetensors"


def test_parse_header_trailing_bytes_when_file_longer_than_data() -> None:
    header, data = entries(("a", "F32", [4], 16))
    assert _reason(raw_safetensors(header, data + b"PK\x03\x04")) == "trailing_bytes"


def test_parse_header_too_large_checked_before_reading() -> None:
    src = CountingSource(struct.pack("<Q", 100_000_001), size=200_000_000)
    with pytest.raises(CorruptSafetensors) as info:
        parse_header(src)
    assert info.value.reason == "header_too_large"
    assert src.bytes_read == 8


def test_parse_header_at_limit_is_not_too_large() -> None:
    # Exactly the limit is allowed; the (absent) header then fails on length, not size.
    assert _reason(struct.pack("<Q", 1000) + b"{", max_header_bytes=1000) == (
        "header_length_exceeds_file"
    )


def test_parse_header_length_exceeds_file() -> None:
    header, _data = entries(("a", "F32", [4], 16))
    body = json.dumps(header).encode()
    assert _reason(raw_safetensors(body, b"", n=len(body) + 100)) == "header_length_exceeds_file"


def test_parse_header_length_near_u64_max_exceeds_file() -> None:
    assert _reason(struct.pack("<Q", 2**63) + b"{}", max_header_bytes=2**64) == (
        "header_length_exceeds_file"
    )


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   {}",  # the spec says MUST start with '{'
        b"[1, 2]",
        b"{'a': 1}",
        b'{"a": 1',
        b'{"__metadata__": {"k": "v"}} xx',
        b'{"a": {"dtype": "F32", "shape": [NaN], "data_offsets": [0, 0]}}',
        b"{\xff\xfe}",
    ],
)
def test_parse_header_malformed_json(body: bytes) -> None:
    assert _reason(raw_safetensors(body)) == "malformed_header_json"


@pytest.mark.parametrize(
    "entry",
    [
        {"dtype": "F32", "shape": [1]},
        {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "extra": 1},
        {"dtype": 5, "shape": [1], "data_offsets": [0, 4]},
        {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]},
        {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]},
        {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]},
        {"dtype": "F32", "shape": 1, "data_offsets": [0, 4]},
        {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]},
        {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]},
        {"dtype": "F32", "shape": [1], "data_offsets": [0, 2**64]},
        [1, 2, 3],
    ],
)
def test_parse_header_malformed_entry_schema(entry: Any) -> None:
    with pytest.raises(CorruptSafetensors) as info:
        parse_header(BytesSource(raw_safetensors({"t": entry}, bytes(4))))
    assert info.value.reason == "malformed_header_json"
    assert info.value.context["tensor"] == "t"


@pytest.mark.parametrize("metadata", [{"k": 1}, {"k": None}, ["k"], "k"])
def test_parse_header_malformed_metadata(metadata: Any) -> None:
    assert _reason(raw_safetensors({"__metadata__": metadata})) == "malformed_header_json"


@pytest.mark.parametrize("name", ["a\x00b", "a\nb", "x" * 1025, "a..b", ".a", "a.", ""])
def test_parse_header_malformed_tensor_name(name: str) -> None:
    header = {name: {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}
    assert _reason(raw_safetensors(header, b"\x00")) == "malformed_header_json"


def test_parse_header_name_of_1024_chars_is_accepted() -> None:
    header = {"x" * 1024: {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}
    assert len(parse_header(BytesSource(raw_safetensors(header, b"\x00"))).tensors) == 1


def test_parse_header_duplicate_tensor_name() -> None:
    entry = '{"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}'
    body = ('{"a": ' + entry + ', "a": ' + entry + "}").encode()
    with pytest.raises(CorruptSafetensors) as info:
        parse_header(BytesSource(raw_safetensors(body, b"\x00")))
    assert info.value.reason == "duplicate_tensor_name"
    assert info.value.context["tensor"] == "a"


def test_parse_header_duplicate_key_inside_entry_is_malformed() -> None:
    body = b'{"a": {"dtype": "U8", "dtype": "I8", "shape": [1], "data_offsets": [0, 1]}}'
    assert _reason(raw_safetensors(body, b"\x00")) == "malformed_header_json"


def test_parse_header_unknown_dtype() -> None:
    header = {"t": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}
    assert _reason(raw_safetensors(header, bytes(16))) == "unknown_dtype"


@pytest.mark.parametrize(
    "offsets",
    [
        [[0, 4], [8, 12]],  # gap
        [[0, 4], [2, 6]],  # overlap
        [[4, 8], [8, 12]],  # does not start at 0
        [[0, 4], [4, 4], [4, 0]],  # end < begin
    ],
)
def test_parse_header_invalid_offsets(offsets: list[list[int]]) -> None:
    header = {
        f"t{i}": {"dtype": "U8", "shape": [max(e - b, 0)], "data_offsets": [b, e]}
        for i, (b, e) in enumerate(offsets)
    }
    data_len = max(e for _, e in offsets)
    assert _reason(raw_safetensors(header, bytes(data_len))) == "invalid_offsets"


@pytest.mark.parametrize(
    ("dtype", "shape", "nbytes"),
    [
        ("F32", [4], 12),
        ("F16", [2, 2], 16),
        ("F4", [3], 2),  # 12 bits: not a whole number of bytes
        ("F6_E2M3", [4], 4),  # 24 bits = 3 bytes
        ("I64", [2**40, 2**40], 8),  # numel * bits overflows u64
    ],
)
def test_parse_header_tensor_info_mismatch(dtype: str, shape: list[int], nbytes: int) -> None:
    header, data = entries(("t", dtype, shape, nbytes))
    with pytest.raises(CorruptSafetensors) as info:
        parse_header(BytesSource(raw_safetensors(header, data)))
    assert info.value.reason == "tensor_info_mismatch"
    assert info.value.context["tensor"] == "t"


@pytest.mark.parametrize(("dtype", "shape", "nbytes"), [("F4", [4], 2), ("F6_E3M2", [4], 3)])
def test_parse_header_valid_sub_byte_dtypes(dtype: str, shape: list[int], nbytes: int) -> None:
    header, data = entries(("t", dtype, shape, nbytes))
    assert parse_header(BytesSource(raw_safetensors(header, data))).tensors["t"].nbytes == nbytes


def test_parse_header_reads_only_header_of_1gb_file() -> None:
    gib = 1 << 30
    header = {"w": {"dtype": "U8", "shape": [gib], "data_offsets": [0, gib]}}
    prefix = raw_safetensors(header)
    src = CountingSource(prefix, size=len(prefix) + gib)
    parsed = parse_header(src)
    assert parsed.tensors["w"].nbytes == gib
    assert src.bytes_read < 1_000_000


def test_parse_header_errors_name_the_file() -> None:
    with pytest.raises(CorruptSafetensors) as info:
        parse_header(BytesSource(b"\x00"), file_name="model-00001.safetensors")
    assert info.value.context["file"] == "model-00001.safetensors"
