"""Canonical JSON and the event hash: golden vectors (fixed inputs → fixed bytes and digests).

If one of these fails, the hash of every stored event changed meaning: existing chains would no
longer verify. Change the encoder only with a migration plan, never the expected values.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.audit.canonical import (
    HASHED_FIELDS,
    canonical_json,
    chain_hash,
    event_document,
    format_number,
    to_json_value,
)
from registry.audit.models import GENESIS_HASH

ACTOR_ID = uuid.UUID("12345678-1234-5678-1234-567812345678")


def first_event() -> dict[str, Any]:
    return event_document(
        seq=1,
        at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        actor="alice",
        actor_id=ACTOR_ID,
        action="adapter.version.register",
        resource="adapter:acme/bot@v3",
        decision={"allowed": True, "policies": ["p1"], "action": "adapter.version.register"},
        before=None,
        after={"version": 3, "score": 0.1, "tiny": 1e-7, "note": "cafe\u0301"},
        request_id="req-1",
    )


def second_event() -> dict[str, Any]:
    return event_document(
        seq=2,
        at=datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC),
        actor=None,
        actor_id=None,
        action="authz.denied",
        resource="adapter:acme/bot",
        decision={"allowed": False, "policies": [], "action": "adapter.delete"},
        before=None,
        after=None,
        request_id=None,
    )


FIRST_HASH = "dc5736870d4d4019fee00473abc3b6ba2379524244e7b047bf8beea1bac6af94"
SECOND_HASH = "788dc6e6a470e6706bd34f87c4c01ab6d712a15e3a70dfb62849f9f1720b3fbb"


class TestGoldenBytes:
    def test_keys_sorted_no_whitespace(self) -> None:
        value = {"b": 1, "a": [True, False, None], "c": {"z": "x", "y": 0.1}}

        assert canonical_json(value) == b'{"a":[true,false,null],"b":1,"c":{"y":0.1,"z":"x"}}'
        assert (
            hashlib.sha256(canonical_json(value)).hexdigest()
            == "eccef9779447ff3cf0d753874b84e821e70ff2b4271518ea68a763c9d2643a6e"
        )

    def test_insertion_order_does_not_matter(self) -> None:
        assert canonical_json({"a": 1, "b": {"d": 2, "c": 3}}) == canonical_json(
            {"b": {"c": 3, "d": 2}, "a": 1}
        )

    def test_nfd_and_nfc_encode_identically(self) -> None:
        nfd, nfc = {"name": "e\u0301"}, {"name": "\u00e9"}

        assert canonical_json(nfd) == canonical_json(nfc) == b'{"name":"\xc3\xa9"}'

    def test_keys_are_nfc_normalised_too(self) -> None:
        assert canonical_json({"e\u0301": 1}) == b'{"\xc3\xa9":1}'

    def test_numbers(self) -> None:
        values = [0.1, 1e-7, 1e21, 1e20, 1.0, -0.0, 1.5, 123456789.125, 5e-324, 1e16, 2**64, -3]

        assert canonical_json(values) == (
            b"[0.1,1e-7,1e+21,100000000000000000000,1,0,1.5,123456789.125,5e-324,"
            b"10000000000000000,18446744073709551616,-3]"
        )

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (0, "0"),
            (1e-6, "0.000001"),
            (1.234e-6, "0.000001234"),
            (-1.25e-8, "-1.25e-8"),
            (1.5e300, "1.5e+300"),
            (10**30, "1e+30"),
            (123.456, "123.456"),
            (1e300, "1e+300"),
        ],
    )
    def test_number_formatting(self, value: float, expected: str) -> None:
        assert format_number(value) == expected

    def test_huge_ints_keep_every_digit(self) -> None:
        assert format_number(10**21 + 1) == "1.000000000000000000001e+21"

    def test_int_and_float_of_same_value_are_the_same_number(self) -> None:
        # PostgreSQL JSONB hands back 1e16 as the int 10000000000000000.
        assert canonical_json(1e16) == canonical_json(10**16)
        assert canonical_json(1.0) == canonical_json(1)
        assert canonical_json(1e300) == canonical_json(10**300)

    def test_datetime_is_rfc3339_utc_micros_and_uuid_is_str(self) -> None:
        value = {
            "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))),
            "id": ACTOR_ID,
        }

        assert canonical_json(value) == (
            b'{"at":"2026-01-02T01:04:05.000000Z","id":"12345678-1234-5678-1234-567812345678"}'
        )

    def test_string_escaping(self) -> None:
        assert canonical_json('a"b\\c\n\t\u0001é€😀\u2028') == (
            b'"a\\"b\\\\c\\n\\t\\u0001\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xe2\x80\xa8"'
        )

    def test_nested_tuples_are_arrays(self) -> None:
        assert canonical_json({"x": (1, [2, (3,)])}) == b'{"x":[1,[2,[3]]]}'


class TestEventHash:
    def test_hashed_fields_are_exactly_the_documented_ten(self) -> None:
        assert set(first_event()) == set(HASHED_FIELDS)
        assert len(HASHED_FIELDS) == 10

    def test_first_event_document_bytes(self) -> None:
        assert canonical_json(first_event()) == (
            b'{"action":"adapter.version.register","actor":"alice",'
            b'"actor_id":"12345678-1234-5678-1234-567812345678",'
            b'"after":{"note":"caf\xc3\xa9","score":0.1,"tiny":1e-7,"version":3},'
            b'"at":"2026-01-02T03:04:05.678901Z","before":null,'
            b'"decision":{"action":"adapter.version.register","allowed":true,"policies":["p1"]},'
            b'"request_id":"req-1","resource":"adapter:acme/bot@v3","seq":1}'
        )

    def test_golden_chain_of_two(self) -> None:
        first = chain_hash(GENESIS_HASH, first_event())
        second = chain_hash(first, second_event())

        assert first == FIRST_HASH
        assert second == SECOND_HASH

    def test_hash_is_sha256_of_prev_bytes_and_document(self) -> None:
        # An independent spelling for a document without special numbers or unicode.
        doc = second_event()
        plain = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

        expected = hashlib.sha256(bytes.fromhex(FIRST_HASH) + plain.encode()).hexdigest()
        assert chain_hash(FIRST_HASH, doc) == expected == SECOND_HASH

    def test_seq_is_part_of_the_hash(self) -> None:
        moved = {**second_event(), "seq": 3}

        assert chain_hash(FIRST_HASH, moved) != SECOND_HASH

    def test_prev_hash_must_be_64_lowercase_hex(self) -> None:
        with pytest.raises(ValueError, match="64 lowercase hex"):
            chain_hash(GENESIS_HASH.upper().replace("0", "A"), second_event())


class TestRefusals:
    @pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
    def test_non_finite_floats_refused(self, value: float) -> None:
        with pytest.raises(ValueError, match="NaN and Infinity"):
            canonical_json({"x": [value]})

    def test_naive_datetime_refused(self) -> None:
        with pytest.raises(ValueError, match="naive"):
            canonical_json({"at": datetime(2026, 1, 1)})

    def test_non_string_key_refused(self) -> None:
        with pytest.raises(TypeError, match="keys must be strings"):
            canonical_json({1: "x"})

    def test_keys_equal_after_nfc_refused(self) -> None:
        with pytest.raises(ValueError, match="duplicate key"):
            canonical_json({"e\u0301": 1, "\u00e9": 2})

    def test_nul_refused(self) -> None:
        with pytest.raises(ValueError, match="NUL"):
            canonical_json({"x": "a\x00b"})

    def test_lone_surrogate_refused(self) -> None:
        with pytest.raises(ValueError, match="surrogate"):
            canonical_json("\ud800")

    def test_unknown_type_refused(self) -> None:
        with pytest.raises(TypeError, match="set"):
            canonical_json({"x": {1, 2}})

    def test_deep_nesting_refused(self) -> None:
        value: Any = 1
        for _ in range(100):
            value = [value]
        with pytest.raises(ValueError, match="nested deeper"):
            canonical_json(value)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)  # beyond, JSON parsers differ
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00")),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(alphabet="abcdeé", max_size=3), children, max_size=4)
    ),
    max_leaves=20,
)


def jsonb_round_trip(value: Any) -> Any:
    """What PostgreSQL's JSONB does to numbers: the decimal text is stored as ``numeric`` and
    an integral value comes back without a fraction (``1e16`` → ``10000000000000000``)."""
    return json.loads(json.dumps(value), parse_float=_numeric)


def _numeric(text: str) -> float | int:
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() else float(text)


class TestStability:
    @given(json_values)
    def test_canonical_output_parses_back_to_the_same_bytes(self, value: Any) -> None:
        encoded = canonical_json(value)

        assert canonical_json(json.loads(encoded)) == encoded

    @given(json_values)
    def test_stored_value_hashes_like_the_original(self, value: Any) -> None:
        stored = json.loads(json.dumps(to_json_value(value)))

        assert canonical_json(stored) == canonical_json(value)

    @given(json_values)
    def test_jsonb_style_number_round_trip_keeps_the_bytes(self, value: Any) -> None:
        assert canonical_json(jsonb_round_trip(to_json_value(value))) == canonical_json(value)
