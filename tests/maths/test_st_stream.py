"""Streaming safetensors: what StWriter writes is what the safetensors library reads, byte for
byte where a tensor is copied; StFile loads one tensor at a time."""

from __future__ import annotations

import errno
import itertools
import os
import struct
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from registry.maths.st_stream import OutTensor, StFile, StWriter, st_dtype
from tests.maths.tiny import header_of, raw_tensor_bytes


def _sample() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return {
        "b.weight": torch.randn(5, 3, generator=g),
        "a.half": torch.randn(7, generator=g).to(torch.float16),
        "c.bf16": torch.randn(2, 3, 2, generator=g).to(torch.bfloat16),
        "d.ids": torch.arange(9, dtype=torch.int64).reshape(3, 3),
        "e.mask": torch.tensor([True, False, True]),
        "f.bytes": torch.arange(5, dtype=torch.uint8),
        "g.scalar": torch.tensor(2.5, dtype=torch.float64),
        "h.empty": torch.zeros(0, 4),
    }


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "in.safetensors"
    save_file(_sample(), path, metadata={"format": "pt", "note": "x"})
    return path


def test_load_reads_one_tensor_of_each_dtype(source: Path) -> None:
    st = StFile(source)
    for name, want in _sample().items():
        got = st.load(name)
        assert got.dtype == want.dtype
        assert got.shape == want.shape
        assert torch.equal(got, want), name


def test_chunks_reassemble_the_raw_bytes(source: Path) -> None:
    st = StFile(source)
    chunks = list(st.iter_chunks("b.weight", 16))
    assert len(chunks) == 4
    assert all(len(c) <= 16 for c in chunks)
    assert b"".join(chunks) == raw_tensor_bytes(source, "b.weight")


def test_writer_output_loads_with_safetensors_and_copies_bytes(
    source: Path, tmp_path: Path
) -> None:
    src = StFile(source)
    header = [OutTensor(t.name, t.dtype, t.shape) for t in src.tensors.values()]
    header[0] = OutTensor(header[0].name, "F32", header[0].shape)
    header.append(OutTensor("z.added", "BF16", (2, 2)))
    order = [t.name for t in src.in_data_order()] + ["z.added"]
    edited = src.load(header[0].name).to(torch.float32) * 2
    out = tmp_path / "out.safetensors"
    with StWriter(out, header, order, src.header.metadata) as writer:
        for name in order[:-1]:
            if name == header[0].name:
                writer.write(name, edited)
            else:
                writer.copy(name, src)
        writer.write("z.added", torch.ones(2, 2, dtype=torch.bfloat16))
    loaded = load_file(out)
    for name, want in _sample().items():
        expected = edited if name == header[0].name else want
        assert torch.equal(loaded[name], expected), name
        if name != header[0].name:
            assert raw_tensor_bytes(out, name) == raw_tensor_bytes(source, name)
    assert torch.equal(loaded["z.added"], torch.ones(2, 2, dtype=torch.bfloat16))
    with safe_open(out, "pt") as f:
        assert f.metadata() == {"format": "pt", "note": "x"}
    (length,) = struct.unpack("<Q", out.read_bytes()[:8])
    assert length % 8 == 0
    written = header_of(out)
    assert list(written) == ["__metadata__", *(t.name for t in header)]
    spans = sorted(tuple(v["data_offsets"]) for k, v in written.items() if k != "__metadata__")
    assert spans[0][0] == 0
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    assert out.stat().st_size == 8 + length + spans[-1][1]


def test_writer_refuses_out_of_order_wrong_shape_and_missing_tensors(tmp_path: Path) -> None:
    header = [OutTensor("a", "F32", (2,)), OutTensor("b", "F32", (3,))]
    with (
        pytest.raises(ValueError, match="out of order"),
        StWriter(tmp_path / "1.safetensors", header, ["a", "b"], {}) as writer,
    ):
        writer.write("b", torch.zeros(3))
    with (
        pytest.raises(ValueError, match="planned"),
        StWriter(tmp_path / "2.safetensors", header, ["a", "b"], {}) as writer,
    ):
        writer.write("a", torch.zeros(2, dtype=torch.float16))
    with (
        pytest.raises(ValueError, match="not written"),
        StWriter(tmp_path / "3.safetensors", header, ["a", "b"], {}) as writer,
    ):
        writer.write("a", torch.zeros(2))
    with pytest.raises(FileExistsError):
        StWriter(tmp_path / "3.safetensors", header, ["a", "b"], {})


def test_st_dtype_names() -> None:
    assert st_dtype(torch.zeros(1, dtype=torch.bfloat16)) == "BF16"
    assert st_dtype(torch.zeros(1, dtype=torch.bool)) == "BOOL"
    with pytest.raises(ValueError, match="no safetensors dtype"):
        st_dtype(torch.zeros(1, dtype=torch.complex128))


def _copy_all(source: Path, out: Path) -> None:
    src = StFile(source)
    header = [OutTensor(t.name, t.dtype, t.shape) for t in src.tensors.values()]
    order = [t.name for t in src.in_data_order()]
    with StWriter(out, header, order, src.header.metadata) as writer:
        for name in order:
            writer.copy(name, src)


def test_copy_falls_back_to_chunks_where_the_kernel_cannot(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system without copy_file_range (EXDEV, ENOSYS), and one that gives up halfway
    through a tensor, cannot be made on this machine: a fake os.copy_file_range stands in."""
    real = os.copy_file_range
    _copy_all(source, tmp_path / "kernel.safetensors")
    calls = itertools.count()

    def halfway(src: int, dst: int, count: int, offset_src: int | None = None) -> int:
        if next(calls) % 2 == 0:  # copies part of a tensor, then fails: the part is undone
            return real(src, dst, max(1, count // 2), offset_src)
        raise OSError(errno.EXDEV, "cross-device")

    monkeypatch.setattr(os, "copy_file_range", halfway)
    _copy_all(source, tmp_path / "halfway.safetensors")
    monkeypatch.setattr(os, "copy_file_range", lambda *a: 0)  # "nothing copied", as at EOF
    _copy_all(source, tmp_path / "zero.safetensors")
    want = source.read_bytes()
    for name in ("kernel", "halfway", "zero"):
        assert (tmp_path / f"{name}.safetensors").read_bytes() == want, name
    assert next(calls) > 2


def test_load_rows_and_write_rows(source: Path, tmp_path: Path) -> None:
    st = StFile(source)
    want = _sample()["d.ids"]
    assert torch.equal(st.load("d.ids", rows=(1, 3)), want[1:3])
    assert st.load("d.ids", rows=(2, 2)).shape == (0, 3)
    with pytest.raises(ValueError, match="outside"):
        st.load("d.ids", rows=(2, 4))
    header = [OutTensor("d.ids", "I64", (3, 3))]
    out = tmp_path / "rows.safetensors"
    with StWriter(out, header, ["d.ids"], {}) as writer:
        writer.write_rows("d.ids", [want[:1], want[1:]])
    assert torch.equal(load_file(out)["d.ids"], want)
    with (
        pytest.raises(ValueError, match="2 rows written"),
        StWriter(tmp_path / "short.safetensors", header, ["d.ids"], {}) as writer,
    ):
        writer.write_rows("d.ids", [want[:2]])
