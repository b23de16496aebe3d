"""SPARSE_DELTA, the registry-native sparse kind: a real delta built in the test from the base's
own weights validates; each broken variant gives its code and reason; index data is read in
bounded chunks and never beyond the budget."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from registry.errors import AdapterInvalid
from registry.validation import validate_adapter
from registry.validation.manifest import read_base_dir
from registry.validation.methods.engine_indices import IndexJob, Segment, read_indices
from registry.validation.safetensors import parse_header
from registry.validation.source import ByteSource, FileSource
from tests.maths.sparse_builders import PREFIX, build_sparse_delta
from tests.maths.tiny import tiny_llama
from tests.validation.methods.method_builders import (
    Tensors,
    assert_error,
    dir_files,
    invalid_dir,
    set_key,
    validate_dir,
    variant,
)

Q = "model.layers.0.self_attn.q_proj"
MODULES = (Q, "model.layers.1.self_attn.v_proj", "model.layers.0.mlp.down_proj")


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("sparse-base"))


@pytest.fixture(scope="module")
def delta(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_sparse_delta(llama, tmp_path_factory.mktemp("sparse") / "a", MODULES)


def edit(name: str, new: Any) -> Any:
    def change(t: Tensors) -> Tensors:
        t[PREFIX + name] = new(t[PREFIX + name])
        return t

    return change


def test_sparse_delta_validates_with_and_without_base(delta: Path, llama: Path) -> None:
    report = validate_dir(delta, llama)
    assert report.peft_type == "SPARSE_DELTA"
    assert report.checked_against_base
    assert report.target_modules == sorted(MODULES)
    assert validate_dir(delta, None).target_modules == sorted(MODULES)


def test_int32_indices_are_accepted(delta: Path, llama: Path, tmp_path: Path) -> None:
    narrow = variant(
        delta, tmp_path / "i32", edit(f"{Q}.sparse_indices", lambda a: a.astype(np.int32))
    )
    assert validate_dir(narrow, llama).checked_against_base


@pytest.mark.parametrize(
    ("name", "change", "reason"),
    [
        ("sparse_indices", lambda a: a.astype(np.float32), "dtype_mismatch"),
        ("sparse_values", lambda a: (a * 1000).astype(np.int32), "dtype_mismatch"),
        ("sparse_values", lambda a: a[:-1], "shape_mismatch"),
        ("sparse_indices", lambda a: a.reshape(1, -1), "shape_mismatch"),
        ("sparse_indices", lambda a: a[::-1].copy(), "unsorted_indices"),
        ("sparse_indices", lambda a: np.concatenate([a[:1], a[:-1]]), "duplicate_indices"),
        ("sparse_indices", lambda a: a - a[0] - 1, "index_out_of_range"),
    ],
)
def test_adapter_faults(delta: Path, tmp_path: Path, name: str, change: Any, reason: str) -> None:
    broken = variant(delta, tmp_path / "b", edit(f"{Q}.{name}", change))
    assert_error(invalid_dir(broken, None), "inconsistent_adapter", reason)


def test_index_beyond_the_base_weight(delta: Path, llama: Path, tmp_path: Path) -> None:
    past = variant(delta, tmp_path / "past", edit(f"{Q}.sparse_indices", lambda a: a + 32 * 32))
    assert validate_dir(past, None).peft_type == "SPARSE_DELTA"  # only a base knows the size
    error = invalid_dir(past, llama)
    assert_error(error, "incompatible_base", "index_out_of_range")
    assert error.context["bound"] == 32 * 32


def test_unknown_module_and_untargeted(delta: Path, llama: Path, tmp_path: Path) -> None:
    def extra(t: Tensors) -> Tensors:
        t[f"{PREFIX}model.layers.0.self_attn.nope_proj.sparse_indices"] = np.arange(3)
        t[f"{PREFIX}model.layers.0.self_attn.nope_proj.sparse_values"] = np.ones(3, np.float32)
        return t

    unknown = variant(delta, tmp_path / "unknown", extra, set_key("target_modules", None))
    assert_error(invalid_dir(unknown, llama), "incompatible_base", "missing_modules")
    narrowed = variant(delta, tmp_path / "narrow", config=set_key("target_modules", ["q_proj"]))
    assert_error(invalid_dir(narrowed, None), "inconsistent_adapter", "unexpected_tensor")


class CountingSource:
    """A source that counts the bytes read through it and the largest single read."""

    def __init__(self, inner: ByteSource) -> None:
        self.inner = inner
        self.read = 0
        self.largest = 0

    @property
    def size(self) -> int:
        return self.inner.size

    def read_at(self, offset: int, length: int) -> bytes:
        data = self.inner.read_at(offset, length)
        self.read += len(data)
        self.largest = max(self.largest, len(data))
        return data


def test_indices_over_the_budget_are_refused_unread(llama: Path, tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.mkdir()
    count = 4 * 1024 * 1024  # 32 MiB of int64 indices against a budget of 1 MiB
    save_file(
        {
            f"{PREFIX}{Q}.sparse_indices": np.arange(count, dtype=np.int64),
            f"{PREFIX}{Q}.sparse_values": np.zeros(count, np.float32),
        },
        big / "adapter_model.safetensors",
    )
    (big / "adapter_config.json").write_text(json.dumps({"peft_type": "SPARSE_DELTA"}))
    files = dir_files(big)
    weights = CountingSource(files["adapter_model.safetensors"])
    files["adapter_model.safetensors"] = weights
    with pytest.raises(AdapterInvalid) as info:
        validate_adapter(files, base=read_base_dir(llama), max_index_bytes=1 << 20)
    assert_error(info.value, "forbidden_file", "too_large")
    assert info.value.context["index_bytes"] == 8 * count
    assert weights.read < 4096  # the 8-byte prefix and the header, no index data


def test_indices_are_streamed_in_bounded_chunks(delta: Path, tmp_path: Path) -> None:
    path = tmp_path / "one.safetensors"
    indices = np.arange(0, 30_000, 3, dtype=np.int32)
    indices[5120] = indices[5119]  # a duplicate across a chunk boundary (4 KiB = 1024 int32)
    save_file({"i": indices}, path)
    src = CountingSource(FileSource(path))
    header = parse_header(src)
    job = IndexJob("m", header.tensors["i"], (Segment(0, len(indices), 30_000),), ordered=True)
    with pytest.raises(AdapterInvalid) as info:
        read_indices(src, header, [job], max_index_bytes=1 << 20, chunk_bytes=4096)
    assert_error(info.value, "inconsistent_adapter", "duplicate_indices")
    assert info.value.context["position"] == 5120
    assert src.largest <= 4096
    fixed = np.arange(0, 30_000, 3, dtype=np.int32)
    save_file({"i": fixed}, path)
    src = CountingSource(FileSource(path))
    header = parse_header(src)
    job = IndexJob("m", header.tensors["i"], (Segment(0, len(fixed), 30_000),), ordered=True)
    read_indices(src, header, [job], max_index_bytes=1 << 20, chunk_bytes=4096)
    assert src.largest <= 4096


def test_indices_above_the_scan_limit_are_not_read_and_a_warning_says_so(
    delta: Path, llama: Path, tmp_path: Path
) -> None:
    base = read_base_dir(llama)
    past = variant(delta, tmp_path / "past", edit(f"{Q}.sparse_indices", lambda a: a + 32 * 32))
    unsorted = variant(
        delta, tmp_path / "unsorted", edit(f"{Q}.sparse_indices", lambda a: a[::-1].copy())
    )
    faults = [
        (past, "incompatible_base", "index_out_of_range"),
        (unsorted, "inconsistent_adapter", "unsorted_indices"),
    ]
    for broken, code, reason in faults:
        files = dir_files(broken)
        tensors = parse_header(files["adapter_model.safetensors"]).tensors
        index_bytes = sum(t.nbytes for n, t in tensors.items() if n.endswith(".sparse_indices"))
        # At or above the indices' size (the default settings: scan limit = index budget), every
        # index is read and the fault found.
        with pytest.raises(AdapterInvalid) as info:
            validate_adapter(files, base=base, scan_limit_bytes=index_bytes)
        assert_error(info.value, code, reason)
        # Below it (the header-only path), no index byte is read: a warning says what is unchecked.
        weights = CountingSource(files["adapter_model.safetensors"])
        report = validate_adapter(
            {**files, "adapter_model.safetensors": weights}, base=base, scan_limit_bytes=0
        )
        (warning,) = [w for w in report.warnings if w.startswith("sparse_indices:")]
        assert f"{index_bytes} bytes of indices above the scan limit of 0 bytes" in warning
        assert "ranges and order not" in warning
        sound = dir_files(delta)
        full = CountingSource(sound["adapter_model.safetensors"])
        validate_adapter(
            {**sound, "adapter_model.safetensors": full}, base=base, scan_limit_bytes=index_bytes
        )
        assert full.read - weights.read >= index_bytes  # what the header-only path left unread


def test_indices_over_the_budget_are_refused_whatever_the_scan_limit(
    llama: Path, tmp_path: Path
) -> None:
    big = tmp_path / "big"
    big.mkdir()
    save_file(
        {
            f"{PREFIX}{Q}.sparse_indices": np.arange(1024, dtype=np.int64),
            f"{PREFIX}{Q}.sparse_values": np.zeros(1024, np.float32),
        },
        big / "adapter_model.safetensors",
    )
    (big / "adapter_config.json").write_text(json.dumps({"peft_type": "SPARSE_DELTA"}))
    with pytest.raises(AdapterInvalid) as info:
        validate_adapter(
            dir_files(big), base=read_base_dir(llama), max_index_bytes=4096, scan_limit_bytes=0
        )
    assert_error(info.value, "forbidden_file", "too_large")
