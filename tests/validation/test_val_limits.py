"""Bounded parsing (issue 11, point 5): header counts and shapes, JSON file caps, deep nesting."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.errors import AdapterInvalid, CorruptSafetensors, ForbiddenFile
from registry.validation import BytesSource, parse_header, read_base_sources, validate_adapter
from registry.validation.safetensors_json import Obj, scan_header

from .validation_builders import CountingSource, adapter_files, f32, raw_safetensors, st_bytes

MIB = 1024 * 1024
Q = "base_model.model.model.layers.0.self_attn.q_proj"


def _lora() -> tuple[dict[str, Any], dict[str, Any]]:
    config = {"peft_type": "LORA", "r": 1, "lora_alpha": 1, "target_modules": ["q_proj"]}
    return config, {f"{Q}.lora_A.weight": f32(1, 2), f"{Q}.lora_B.weight": f32(2, 1)}


def _weights_with_metadata(entries: bytes) -> bytes:
    """A valid one-module LoRA whose __metadata__ holds ``entries`` (a JSON members list)."""
    _config, tensors = _lora()
    valid = st_bytes(tensors)
    header = json.loads(valid[8 : 8 + int.from_bytes(valid[:8], "little")])
    header.pop("__metadata__", None)
    body = json.dumps(header).encode()
    flooded = b'{"__metadata__":{' + entries + b"}," + body[1:]
    return raw_safetensors(flooded, valid[8 + int.from_bytes(valid[:8], "little") :])


def _reason(data: bytes, **kwargs: Any) -> str:
    with pytest.raises(CorruptSafetensors) as info:
        parse_header(BytesSource(data), **kwargs)
    return info.value.reason


class TestHeaderBounds:
    def test_shape_of_500k_dimensions_is_refused_before_multiplying(self) -> None:
        # The 3.5 MB header of the issue (main: 203 s of bignum products).
        shape = b",".join([b"1000000"] * 500_000)
        header = b'{"t":{"dtype":"F32","shape":[' + shape + b'],"data_offsets":[0,4]}}'
        assert _reason(raw_safetensors(header, bytes(4))) == "too_many_dims"

    def test_shape_over_the_dimension_limit_is_refused(self) -> None:
        header = {"t": {"dtype": "F32", "shape": [1] * 33, "data_offsets": [0, 4]}}
        assert _reason(raw_safetensors(header, bytes(4))) == "too_many_dims"

    def test_shape_at_the_dimension_limit_is_accepted(self) -> None:
        header = {"t": {"dtype": "F32", "shape": [1] * 32, "data_offsets": [0, 4]}}
        assert parse_header(BytesSource(raw_safetensors(header, bytes(4)))).tensors["t"].numel == 1

    def test_55_mb_header_of_3_5m_metadata_entries_is_refused(self) -> None:
        flood = b",".join(b'"k%07d":"v"' % i for i in range(3_500_000))
        data = _weights_with_metadata(flood)
        assert len(data) > 50_000_000
        config, _tensors = _lora()
        files = adapter_files(config, {})
        files["adapter_model.safetensors"] = BytesSource(data)
        with pytest.raises(CorruptSafetensors) as info:
            validate_adapter(files, base=None)
        assert info.value.reason == "too_many_metadata_entries"

    def test_metadata_at_the_limit_is_accepted(self) -> None:
        entries = b",".join(b'"k%d":"v"' % i for i in range(4096))
        header = parse_header(BytesSource(_weights_with_metadata(entries)))
        assert len(header.metadata) == 4096

    def test_tensor_count_over_the_limit_is_refused(self) -> None:
        header = {
            f"t{i}": {"dtype": "U8", "shape": [1], "data_offsets": [i, i + 1]} for i in range(11)
        }
        assert _reason(raw_safetensors(header, bytes(11)), max_tensors=10) == "too_many_tensors"
        assert (
            len(
                parse_header(
                    BytesSource(raw_safetensors(header, bytes(11))), max_tensors=11
                ).tensors
            )
            == 11
        )

    def test_deeply_nested_entry_is_malformed(self) -> None:
        header = b'{"t":{"dtype":"F32","shape":' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
        assert _reason(raw_safetensors(header)) == "malformed_header_json"

    def test_lone_surrogate_tensor_name_is_malformed(self) -> None:
        header = b'{"a\\ud800":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'
        assert _reason(raw_safetensors(header, bytes(1))) == "malformed_header_json"

    @pytest.mark.parametrize(
        "header",
        [
            b'{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}} x',
            b'{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},}',
            b'{"__metadata__":{"a":"b",},"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
            b'{"__metadata__":{"a":1}}',
            b'{"__metadata__":[]}',
            b'{"t" {"dtype":"U8"}}',
            b"{",
        ],
    )
    def test_malformed_json_is_still_malformed(self, header: bytes) -> None:
        assert _reason(raw_safetensors(header, bytes(1))) == "malformed_header_json"


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    metadata=st.none() | st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=4),
    entries=st.dictionaries(
        st.text(min_size=1, max_size=6).filter(lambda k: k != "__metadata__"),
        _JSON_VALUES,
        max_size=4,
    ),
    indent=st.sampled_from([None, 0, 2, "\t"]),
)
def test_scan_header_reads_what_json_loads_reads(
    metadata: dict[str, str] | None, entries: dict[str, Any], indent: int | str | None
) -> None:
    document = {"__metadata__": metadata, **entries}
    pairs = scan_header(json.dumps(document, indent=indent).encode(), "f", 100)
    assert [(k, _plain(v)) for k, v in pairs] == [(k, _plain(v)) for k, v in document.items()]


def _plain(value: Any) -> Any:
    """The scanner keeps objects as ordered pairs (``Obj``): compare as plain JSON values."""
    if isinstance(value, Obj):
        return {k: _plain(v) for k, v in value}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class TestFileCaps:
    def test_oversized_tokenizer_json_is_refused_before_reading(self) -> None:
        # 48 MiB: under main's 64 MiB cap, over the 40 MiB vocabulary-file cap.
        config, tensors = _lora()
        files = adapter_files(config, tensors)
        tokenizer = CountingSource(b'{"model": {}}' + b" " * 600, size=48 * MIB)
        files["tokenizer.json"] = tokenizer
        with pytest.raises(ForbiddenFile) as info:
            validate_adapter(files, base=None)
        assert (info.value.reason, info.value.context["file"]) == ("too_large", "tokenizer.json")
        assert tokenizer.bytes_read <= 512  # the head check only

    def test_other_text_extra_over_its_cap_is_refused(self) -> None:
        config, tensors = _lora()
        files = adapter_files(config, tensors)
        files["tokenizer_config.json"] = CountingSource(b"{}" + b" " * 600, size=9 * MIB)
        with pytest.raises(ForbiddenFile) as info:
            validate_adapter(files, base=None)
        assert info.value.reason == "too_large"

    def test_caps_are_parameters(self) -> None:
        config, tensors = _lora()
        files = adapter_files(config, tensors, {"tokenizer.json": b'{"model": {}}'})
        with pytest.raises(ForbiddenFile):
            validate_adapter(files, base=None, max_tokenizer_bytes=4)
        assert validate_adapter(files, base=None).r == 1

    @pytest.mark.parametrize("name", ["tokenizer.json", "special_tokens_map.json"])
    def test_deeply_nested_text_json_is_malformed(self, name: str) -> None:
        config, tensors = _lora()
        nested = b"[" * 200_000 + b"]" * 200_000
        with pytest.raises(ForbiddenFile) as info:
            validate_adapter(adapter_files(config, tensors, {name: nested}), base=None)
        assert info.value.reason == "malformed_json"

    def test_deeply_nested_adapter_config_is_malformed(self) -> None:
        _config, tensors = _lora()
        files = adapter_files({}, tensors)
        files["adapter_config.json"] = BytesSource(
            b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        )
        with pytest.raises(AdapterInvalid) as info:
            validate_adapter(files, base=None)
        assert (info.value.code, info.value.reason) == ("invalid_adapter_config", "malformed_json")

    @pytest.mark.parametrize(
        ("name", "size"),
        [("config.json", 4 * MIB + 1), ("model.safetensors.index.json", 32 * MIB + 1)],
    )
    def test_oversized_base_json_is_refused_before_reading(self, name: str, size: int) -> None:
        src = CountingSource(b"{}", size=size)
        files: dict[str, Any] = {"config.json": BytesSource(b"{}"), name: src}
        with pytest.raises(ForbiddenFile) as info:
            read_base_sources(files)
        assert (info.value.reason, info.value.context["file"]) == ("too_large", name)
        assert src.bytes_read == 0
