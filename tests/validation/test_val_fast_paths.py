"""The validator's per-tensor fast paths give the answers of the plain checks they stand for.

Validation time follows the tensor count (``bench.validate_methods``), so the per-tensor work has
fast paths: the header's top level walked with one regex per separator, a tensor name accepted by
one regex, ``TensorInfo`` filled without ``__setattr__``, a tensor's role found by a dict lookup on
its suffix (the engine's reuse of a module's shape check: ``methods/test_engine_reuse.py``).
Each test here pins a fast path to the slower rule it replaces, on the cases where they could
part ways.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

import pytest

from registry.errors import CorruptSafetensors
from registry.validation import BytesSource
from registry.validation.layout import EXTRA_SUFFIXES, SUFFIXES, _SuffixTable
from registry.validation.methods import METHODS
from registry.validation.safetensors import (
    _PLAIN_NAME,
    MAX_TENSOR_NAME_CHARS,
    TensorInfo,
    _check_name,
    _tensor_info,
    parse_header,
)
from registry.validation.safetensors_json import FAST_DECODE_BYTES, _walk_top, decode_whole
from tests.validation.validation_builders import raw_safetensors


def _longest_suffix(path: str, suffixes: Mapping[str, str]) -> tuple[str | None, str]:
    """The rule :class:`_SuffixTable` implements: every suffix tried, longest first."""
    for suffix in sorted(suffixes, key=len, reverse=True):
        if path.endswith("." + suffix) and len(path) > len(suffix) + 1:
            return suffixes[suffix], path[: -len(suffix) - 1]
    return None, path


def _tables() -> list[dict[str, str]]:
    tables = [dict(t) for t in SUFFIXES.values()] + [dict(EXTRA_SUFFIXES)]
    tables += [{r.suffix: r.suffix for r in m.roles} for m in METHODS.values() if m.roles]
    return tables


@pytest.mark.parametrize("suffixes", _tables())
def test_suffix_table_finds_the_longest_suffix_as_trying_each_does(
    suffixes: dict[str, str],
) -> None:
    modules = ["model.layers.0.self_attn.q_proj", "q", "a..b", "x.", "lora_B", "m.lora_B"]
    paths = ["", ".", "..", "lora_A", ".lora_A", "lora_B.bias", ".lora_B.bias", "a.b.c.d.e"]
    for suffix in [*suffixes, "weight", "bias", "lora_B.bias", "base_layer.bias"]:
        paths += [suffix, "." + suffix, suffix + ".x"]
        paths += [f"{module}.{suffix}" for module in modules]
    table = _SuffixTable(suffixes)
    for path in paths:
        assert table.match(path) == _longest_suffix(path, suffixes), path


NAMES = [
    "a",
    "base_model.model.layers.0.lora_A.weight",
    "x" * MAX_TENSOR_NAME_CHARS,
    "x" * (MAX_TENSOR_NAME_CHARS + 1),
    "caf\u00e9.weight",
    "a\ud800b",
    "a\x7fb",
    "a\x1fb",
    "a\tb",
    "a b.c",
    "a..b",
    ".a",
    "a.",
    ".",
    "",
    "a.b\n",
]


@pytest.mark.parametrize("name", NAMES)
def test_plain_name_regex_accepts_only_what_check_name_accepts(name: str) -> None:
    fast = len(name) <= MAX_TENSOR_NAME_CHARS and name.isascii() and bool(_PLAIN_NAME.match(name))
    try:
        _check_name(name, "f")
        slow = True
    except CorruptSafetensors:
        slow = False
    assert not fast or slow  # the fast path never accepts what the full check refuses
    if name.isascii():
        assert fast == slow  # and, for ASCII names, accepts all it accepts
    header = json.dumps({name: {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}})
    src = BytesSource(raw_safetensors(header.encode("utf-8", "surrogatepass"), b"\x00"))
    if slow:
        assert list(parse_header(src).tensors) == [name]
    else:
        with pytest.raises(CorruptSafetensors) as info:
            parse_header(src)
        assert info.value.reason == "malformed_header_json"


def test_tensor_info_builder_makes_the_same_frozen_value() -> None:
    built = _tensor_info("t", "F32", (2, 3), 8, 32)
    plain = TensorInfo(name="t", dtype="F32", shape=(2, 3), begin=8, end=32)
    assert built == plain
    assert hash(built) == hash(plain)
    assert repr(built) == repr(plain)
    assert (built.numel, built.nbytes) == (6, 24)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.name = "u"  # type: ignore[misc]


@pytest.mark.parametrize(
    "body",
    [
        b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},}',  # trailing comma
        b'{"a" {"dtype":"U8","shape":[1],"data_offsets":[0,1]}}',  # no colon
        b'{"a":}',  # no value
        b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]} "b":1}',  # no comma
        b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]};"b":1}',
        b"{,}",
        b"{ }}",
        b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}',  # unclosed
        b'{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[' + b"[" * 5000,
    ],
)
def test_header_walk_refuses_broken_separators(body: bytes) -> None:
    with pytest.raises(CorruptSafetensors) as info:
        parse_header(BytesSource(raw_safetensors(body, b"\x00")))
    assert info.value.reason == "malformed_header_json"


def test_header_walk_takes_json_whitespace_anywhere_between_tokens() -> None:
    body = (
        b'{ \n"a"\t:\r{"dtype":"U8","shape":[1],"data_offsets":[0,1]} ,\n "__metadata__" : {} \n}'
    )
    header = parse_header(BytesSource(raw_safetensors(body, b"\x00")))
    assert list(header.tensors) == ["a"]
    assert header.metadata == {}


HEADERS = [
    b"{}",
    b'{"__metadata__": null}',
    b'{"__metadata__": {"format": "pt", "k": ""}, "a": {"dtype": "U8"}}',
    b'{"a": {"dtype": "U8", "a": [1, {"b": null}]}, "b": [1, 2], "c": "x"}',
    b'{"__metadata__": {"k": 1}}',
    b'{"__metadata__": {"k": null}}',
    b'{"__metadata__": ["k"]}',
    b'{"__metadata__": "k"}',
    b'{"__metadata__": {}, "__metadata__": {"k": "v"}}',
    b'{"__metadata__": {"k": "v", "k": "w"}}',
    b'{"a": 1, "a": 2}',
    b'{"a": NaN}',
    b'{"a": 1} x',
    b'{"a": 1,}',
    b'{"a": "\\ud800"}',
    b'{"a": "\x01"}',
    b"{" + b'"a": ' + b"[" * 3000 + b"]" * 3000 + b"}",
    b'{"__metadata__": {' + b", ".join(b'"k%d": ""' % i for i in range(4097)) + b"}}",
    b'{"__metadata__": {' + b", ".join(b'"k%d": ""' % i for i in range(4096)) + b"}}",
    b"{" + b", ".join(b'"t%d": 0' % i for i in range(11)) + b"}",
]


@pytest.mark.parametrize("body", HEADERS, ids=range(len(HEADERS)))
def test_whole_decode_keeps_only_what_the_walk_accepts_and_gives_its_pairs(body: bytes) -> None:
    text = body.decode()
    fast = decode_whole(text, max_tensors=10)
    try:
        walked: list[tuple[str, object]] | None = _walk_top(text, "f", 10)
    except (ValueError, RecursionError, CorruptSafetensors):
        walked = None
    assert fast is None or fast == walked
    if walked is not None and len(body) <= FAST_DECODE_BYTES:
        assert fast == walked  # the fast path takes every header the walk accepts


@pytest.mark.parametrize(
    "order", [("dtype", "shape", "data_offsets"), ("data_offsets", "dtype", "shape")]
)
def test_entries_in_any_key_order_parse_alike(order: tuple[str, ...]) -> None:
    fields = {"dtype": '"F32"', "shape": "[2, 3]", "data_offsets": "[0, 24]"}
    body = '{"t": {' + ", ".join(f'"{key}": {fields[key]}' for key in order) + "}}"
    header = parse_header(BytesSource(raw_safetensors(body.encode(), bytes(24))))
    assert header.tensors["t"] == TensorInfo("t", "F32", (2, 3), 0, 24)


@pytest.mark.parametrize("dims", [32, 33])
def test_the_dimension_limit_holds_on_the_usual_entry(dims: int) -> None:
    entry = {"dtype": "U8", "shape": [1] * dims, "data_offsets": [0, 1]}
    src = BytesSource(raw_safetensors({"t": entry}, b"\x00"))
    if dims <= 32:
        assert parse_header(src).tensors["t"].shape == (1,) * dims
    else:
        with pytest.raises(CorruptSafetensors) as info:
            parse_header(src)
        assert info.value.reason == "too_many_dims"
