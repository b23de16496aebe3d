"""Canonical JSON and the audit event hash.

Canonical JSON (bytes, UTF-8):

- objects: keys sorted by Unicode code point, no whitespace (separators ``,`` and ``:``);
  keys must be strings; two keys equal after NFC normalisation are refused;
- strings (keys and values): NFC-normalised, then escaped as Python's ``json`` does with
  ``ensure_ascii=False`` (``"`` and ``\\`` and control characters escaped, everything else
  literal UTF-8); NUL characters and lone surrogates are refused (PostgreSQL cannot store them);
- numbers are serialised by their *decimal value*, not their Python type, so a value reads back
  to the same bytes whether the database returns it as an int or a float (PostgreSQL's JSONB
  stores ``1e16`` as the integer ``10000000000000000``). An int is its exact value, a float the
  shortest decimal that round-trips (``repr``); that value is written the way ECMAScript's
  ``Number.prototype.toString`` (and RFC 8785) writes numbers: ``1``, ``0.1``, ``1e-7``,
  ``100000000000000000000``, ``1e+21``; ``1`` and ``1.0`` are the same number, as are ``-0.0``
  and ``0``. NaN and ±Infinity are refused;
- ``true``, ``false``, ``null``; tuples are arrays;
- :class:`datetime.datetime` (aware only) becomes RFC 3339 UTC with microseconds,
  ``2026-01-02T03:04:05.000000Z``; :class:`uuid.UUID` its lowercase hyphenated string.

:func:`to_json_value` applies the same normalisation but returns plain JSON data (this is what
the database stores), so hashing the stored value gives the same bytes as hashing the original.

Event hash::

    hash = sha256(bytes.fromhex(prev_hash) || canonical_json(document)).hexdigest()

where ``document`` is the JSON object with exactly these ten members (:data:`HASHED_FIELDS`):
``seq`` (int), ``at`` (RFC 3339 string as above), ``actor`` (string or null), ``actor_id``
(UUID string or null), ``action``, ``resource`` (strings), ``decision``, ``before``, ``after``
(JSON or null) and ``request_id`` (string or null). ``prev_hash`` enters as the 32 raw bytes
prefix, ``hash`` itself is not hashed. The first event's ``prev_hash`` is
:data:`~registry.audit.models.GENESIS_HASH` (64 zeros). Because ``seq`` is hashed, moving an
event's content to another row breaks its hash even if ``prev_hash`` is rewritten.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

HASHED_FIELDS = (
    "seq",
    "at",
    "actor",
    "actor_id",
    "action",
    "resource",
    "decision",
    "before",
    "after",
    "request_id",
)
MAX_DEPTH = 64
_HEX64 = re.compile(r"[0-9a-f]{64}")


def format_timestamp(value: datetime) -> str:
    """RFC 3339 UTC with microseconds and ``Z``; naive datetimes are refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetime refused in canonical JSON")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _string(value: str) -> str:
    text = unicodedata.normalize("NFC", value)
    if "\x00" in text:
        raise ValueError("NUL character refused in canonical JSON")
    return text


def to_json_value(value: Any, _depth: int = 0) -> Any:
    """Normalise ``value`` to plain JSON data (NFC strings, str timestamps/UUIDs, lists).

    Raises ValueError for non-finite floats, naive datetimes, NUL, duplicate keys after NFC and
    nesting deeper than :data:`MAX_DEPTH`; TypeError for anything that is not JSON.
    """
    if _depth > MAX_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH}")
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("NaN and Infinity are refused in canonical JSON")
        return value
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [to_json_value(item, _depth + 1) for item in value]
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, not {type(key).__name__}")
            nkey = _string(key)
            if nkey in out:
                raise ValueError(f"duplicate key after NFC normalisation: {nkey!r}")
            out[nkey] = to_json_value(item, _depth + 1)
        return out
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def format_number(value: int | float) -> str:
    """ECMAScript-style rendering of a number's decimal value (see the module docstring)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("NaN and Infinity are refused in canonical JSON")
        sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    else:
        sign, digit_tuple, exponent = Decimal(value).as_tuple()
    assert isinstance(exponent, int)  # finite
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    if not digits:
        return "0"
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    digits = stripped
    k = len(digits)
    n = exponent + k  # value = 0.<digits> * 10**n
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        text = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
        text = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return "-" + text if sign else text


def _encode(value: Any, parts: list[str]) -> None:
    # ``value`` has been through to_json_value: only JSON types remain.
    if value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, int | float):
        parts.append(format_number(value))
    elif isinstance(value, str):
        parts.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, list):
        parts.append("[")
        for index, item in enumerate(value):
            if index:
                parts.append(",")
            _encode(item, parts)
        parts.append("]")
    else:
        parts.append("{")
        for index, key in enumerate(sorted(value)):
            if index:
                parts.append(",")
            parts.append(json.dumps(key, ensure_ascii=False))
            parts.append(":")
            _encode(value[key], parts)
        parts.append("}")


def canonical_json(value: Any) -> bytes:
    """The canonical UTF-8 JSON bytes of ``value`` (see the module docstring)."""
    parts: list[str] = []
    _encode(to_json_value(value), parts)
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("lone surrogate refused in canonical JSON") from exc


def event_document(
    *,
    seq: int,
    at: datetime,
    actor: str | None,
    actor_id: uuid.UUID | None,
    action: str,
    resource: str,
    decision: Any,
    before: Any,
    after: Any,
    request_id: str | None,
) -> dict[str, Any]:
    """The hashed document of one event: exactly :data:`HASHED_FIELDS`."""
    return {
        "seq": seq,
        "at": format_timestamp(at),
        "actor": actor,
        "actor_id": str(actor_id) if actor_id is not None else None,
        "action": action,
        "resource": resource,
        "decision": decision,
        "before": before,
        "after": after,
        "request_id": request_id,
    }


def check_hash(value: str) -> str:
    """Validate a 64-character lowercase hex sha256 and return it."""
    if not isinstance(value, str) or _HEX64.fullmatch(value) is None:
        raise ValueError("hash must be 64 lowercase hex characters")
    return value


def chain_hash(prev_hash: str, document: Mapping[str, Any]) -> str:
    """``sha256(bytes.fromhex(prev_hash) || canonical_json(document))`` as lowercase hex."""
    return chain_hash_of(prev_hash, canonical_json(document))


def chain_hash_of(prev_hash: str, document_json: bytes) -> str:
    """:func:`chain_hash` of a document already in canonical JSON (``document_json``)."""
    digest = hashlib.sha256(bytes.fromhex(check_hash(prev_hash)))
    digest.update(document_json)
    return digest.hexdigest()
