"""File allow-list: names and magic bytes, never extensions alone."""

from __future__ import annotations

import io
import json
import pickle
import struct
import tarfile
import zipfile

import numpy as np
import pytest

from registry.errors import ForbiddenFile
from registry.validation import ALLOWED_NAMES, check_file_allowed, check_text_extra

from .validation_builders import st_bytes


class _Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pwned",))


def _reason(name: str, head: bytes) -> str:
    with pytest.raises(ForbiddenFile) as info:
        check_file_allowed(name, head[:512])
    assert info.value.context["file"] == name[:255]
    return info.value.reason


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"a": 1}))
    return buf.getvalue()


def _tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("x.txt")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    return buf.getvalue()


def test_check_file_allowed_accepts_allowed_names_with_plain_content() -> None:
    weights = st_bytes({"t": np.zeros(2, np.float32)})
    for name in ALLOWED_NAMES:
        head = weights if name == "adapter_model.safetensors" else b'{"a": "text \xc3\xa9"}'
        check_file_allowed(name, head[:512])


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_check_file_allowed_pickle_renamed_safetensors(protocol: int) -> None:
    assert (
        _reason("adapter_model.safetensors", pickle.dumps(_Payload(), protocol=protocol))
        == "pickle"
    )


@pytest.mark.parametrize("name", ["README.md", "config.p", "weights.dat", "adapter_config.json"])
@pytest.mark.parametrize("protocol", [0, 1])
def test_check_file_allowed_text_pickle_under_any_name(name: str, protocol: int) -> None:
    assert _reason(name, pickle.dumps(_Payload(), protocol=protocol)) == "pickle"


@pytest.mark.parametrize(
    "name",
    ["adapter_model.bin", "adapter_model.pt", "x.pth", "x.pkl", "x.ckpt", "training_args.bin"],
)
def test_check_file_allowed_pickle_format_names(name: str) -> None:
    assert _reason(name, _zip()) == "pickle"


@pytest.mark.parametrize(
    "head",
    [
        _zip(),
        b"PK\x05\x06" + bytes(18),
        b"\x1f\x8b\x08\x00" + bytes(8),
        b"\xfd7zXZ\x00" + bytes(8),
        b"7z\xbc\xaf\x27\x1c" + bytes(8),
        b"BZh91AY&SY",
        _tar(),
    ],
    # Explicit ids: zip bytes embed the current time, and xdist workers must collect alike.
    ids=["zip", "empty-zip", "gzip", "xz", "7z", "bzip2", "tar"],
)
def test_check_file_allowed_archive_renamed_safetensors(head: bytes) -> None:
    assert _reason("adapter_model.safetensors", head) == "archive"


@pytest.mark.parametrize(
    "name",
    [
        "model.safetensors",
        "sub/adapter_config.json",
        "..",
        "../adapter_config.json",
        "a\\b",
        "README.md\x00.txt",
        "",
        "x" * 300,
        "tokenizer.model",
        "readme.md",
    ],
)
def test_check_file_allowed_forbidden_names(name: str) -> None:
    assert _reason(name, b"hello") == "forbidden_name"


def test_check_file_allowed_safetensors_whose_length_resembles_pickle() -> None:
    # Header length 0x380 = 896 starts with the bytes 80 03, like a protocol-3 pickle.
    body = b'{"__metadata__":{"format":"pt"}}'.ljust(0x380, b" ")
    check_file_allowed("adapter_model.safetensors", struct.pack("<Q", 0x380) + body[:504])


@pytest.mark.parametrize("head", [b"\xff\xfe\x00\x00 binary", b"text with NUL \x00 inside"])
def test_check_file_allowed_binary_text_extra(head: bytes) -> None:
    assert _reason("README.md", head) == "binary"


def test_check_file_allowed_utf8_cut_at_head_boundary_is_fine() -> None:
    head = ("a" * 511 + "é").encode()[:512]  # ends inside the two-byte é
    check_file_allowed("README.md", head)


def test_check_file_allowed_real_readme_is_not_a_pickle() -> None:
    text = b"---\nbase_model: peft-fixtures/tiny-llama\nlibrary_name: peft\n---\n\n# Model Card\n"
    check_file_allowed("README.md", text)
    check_file_allowed("merges.txt", b"#version: 0.2\nc o\nR e\n")


def test_check_text_extra_rejects_malformed_json() -> None:
    with pytest.raises(ForbiddenFile) as info:
        check_text_extra("tokenizer_config.json", b'{"a": ')
    assert info.value.reason == "malformed_json"


def test_check_text_extra_rejects_invalid_utf8_after_head() -> None:
    with pytest.raises(ForbiddenFile) as info:
        check_text_extra("README.md", b"a" * 1000 + b"\xff")
    assert info.value.reason == "binary"


def test_check_text_extra_rejects_too_large() -> None:
    with pytest.raises(ForbiddenFile) as info:
        check_text_extra("README.md", b"a" * 11, max_bytes=10)
    assert info.value.reason == "too_large"


def test_check_text_extra_accepts_json_and_markdown() -> None:
    check_text_extra("tokenizer_config.json", json.dumps({"model_max_length": 8}).encode())
    check_text_extra("README.md", "# Ünïcode".encode())
