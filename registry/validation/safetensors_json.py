"""The JSON layer of the safetensors header parser: a walk that counts while it scans.

A header of at most :data:`FAST_DECODE_BYTES` is first decoded in one C call and kept when it
passes every check of the walk (:func:`decode_whole`). Any other header is walked one top-level
entry at a time (keys and metadata strings with json's C ``scanstring``, each tensor entry with
json's C scanner), so the tensor and ``__metadata__`` counts stop the work early and a large
header is never decoded as one object tree: a 55 MB header of 3.5 M metadata entries is refused
after 4096 of them. Deep nesting inside an entry trips the C scanner's recursion guard at once.
Errors are those of :mod:`registry.validation.safetensors`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, NoReturn

from registry.errors import CorruptSafetensors
from registry.validation.strict_json import reject_constant

#: Tensors per file: a LoRA on every expert of a 235B MoE has ~75 k; base shards far fewer.
MAX_TENSORS = 250_000
#: ``__metadata__`` entries: writers store a handful ("format", training notes).
MAX_METADATA_ENTRIES = 4096
#: Headers up to this size are decoded in one call (:func:`decode_whole`; a 7B adapter with four
#: tensors per module has a 123 KB header), larger ones walked entry by entry, counting as they go.
#: A hostile header of this size (37 k metadata entries) costs a few milliseconds to decode whole
#: before the walk refuses it.
FAST_DECODE_BYTES = 256 * 1024


class Obj(list[tuple[str, Any]]):
    """A JSON object kept as its ordered key/value pairs so duplicates stay visible."""


def fail(reason: str, detail: str, file_name: str, tensor: str | None = None) -> NoReturn:
    context: dict[str, Any] = {"file": file_name}
    if tensor is not None:
        context["tensor"] = tensor
    raise CorruptSafetensors(detail, reason=reason, context=context)


_WS = re.compile(r"[ \t\n\r]*")
# The C string scanner json itself uses (typeshed does not declare it).
_scanstring: Callable[[str, int, bool], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
_ENTRY_DECODER = json.JSONDecoder(object_pairs_hook=Obj, parse_constant=reject_constant)
# raw_decode's C scanner, called without raw_decode's Python frame (one call per tensor).
_scan_entry: Callable[[str, int], tuple[Any, int]] = _ENTRY_DECODER.scan_once  # type: ignore[attr-defined]


class _Malformed(ValueError):
    pass


def _skip_ws(text: str, pos: int) -> int:
    match = _WS.match(text, pos)
    assert match is not None  # [...]* always matches
    return match.end()


def _expect(text: str, pos: int, char: str) -> int:
    """Skip JSON whitespace, require ``char``, return the position after it and whitespace."""
    pos = _skip_ws(text, pos)
    if text[pos : pos + 1] != char:
        raise _Malformed(f"expected {char!r} at {pos}")
    return _skip_ws(text, pos + 1)


def _walk_object(text: str, pos: int, on_item: Callable[[str, int], int]) -> int:
    """Walk the JSON object at ``text[pos]``: ``on_item(key, value_pos)`` parses one value and
    returns the position after it. Returns the position after the closing brace."""
    pos = _expect(text, pos, "{")
    if text[pos : pos + 1] == "}":
        return pos + 1
    while True:
        if text[pos : pos + 1] != '"':
            raise _Malformed(f"expected a key at {pos}")
        key, pos = _scanstring(text, pos + 1, True)
        pos = _skip_ws(text, on_item(key, _expect(text, pos, ":")))
        if text[pos : pos + 1] == "}":
            return pos + 1
        pos = _expect(text, pos, ",")


def _metadata(text: str, pos: int, file_name: str) -> tuple[Obj | None, int]:
    """Decode ``__metadata__`` (null or an object of strings), counting entries as it goes."""
    if text.startswith("null", pos):
        return None, pos + 4
    meta = Obj()

    def entry(key: str, at: int) -> int:
        if len(meta) >= MAX_METADATA_ENTRIES:
            fail(
                "too_many_metadata_entries",
                f"more than {MAX_METADATA_ENTRIES} __metadata__ entries",
                file_name,
            )
        if text[at : at + 1] != '"':
            fail("malformed_header_json", f"__metadata__[{key[:40]!r}] is not a string", file_name)
        value, end = _scanstring(text, at + 1, True)
        meta.append((key, value))
        return int(end)

    if text[pos : pos + 1] != "{":
        fail("malformed_header_json", "__metadata__ is not a JSON object", file_name)
    return meta, _walk_object(text, pos, entry)


def scan_header(raw: bytes, file_name: str, max_tensors: int) -> list[tuple[str, Any]]:
    """The top-level (key, value) pairs of a header, in order (``__metadata__`` as an ``Obj`` of
    strings or None); tensors and metadata entries are counted while scanning."""
    # The spec says the header MUST start with '{' (the reference reader tolerates whitespace).
    if not raw.startswith(b"{"):
        fail("malformed_header_json", "header does not start with '{'", file_name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        fail("malformed_header_json", "header is not valid UTF-8", file_name)
    if len(raw) <= FAST_DECODE_BYTES:
        decoded = decode_whole(text, max_tensors)
        if decoded is not None:
            return decoded
    try:
        pairs = _walk_top(text, file_name, max_tensors)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        fail("malformed_header_json", f"header is not valid JSON: {str(exc)[:120]}", file_name)
    return pairs


def decode_whole(text: str, max_tensors: int) -> list[tuple[str, Any]] | None:
    """The pairs :func:`_walk_top` gives, decoded in one C call, for a header that passes every
    check of the walk; None for any other (the walk then says what is wrong, and where).

    Only for headers of at most :data:`FAST_DECODE_BYTES`: decoding a small header whole costs
    less than any count could save by stopping early.
    """
    try:
        top = _ENTRY_DECODER.decode(text)
    except (ValueError, RecursionError):
        return None
    if type(top) is not Obj:
        return None
    tensors = 0
    for key, value in top:
        if key != "__metadata__":
            tensors += 1
        elif value is not None and not _string_map(value):
            return None
    return None if tensors > max_tensors else list(top)


def _string_map(value: Any) -> bool:
    """What :func:`_metadata` accepts: an object of at most MAX_METADATA_ENTRIES strings."""
    if type(value) is not Obj or len(value) > MAX_METADATA_ENTRIES:
        return False
    return all(type(item) is str for _, item in value)


#: ``:`` between a key and its value, and what may follow a value (``,`` or the closing ``}``),
#: each with the whitespace around it: one C-level match per step of the top-level walk.
_COLON = re.compile(r"[ \t\n\r]*:[ \t\n\r]*")
_NEXT = re.compile(r"[ \t\n\r]*(?:(\})|,[ \t\n\r]*)")


def _walk_top(text: str, file_name: str, max_tensors: int) -> list[tuple[str, Any]]:
    """:func:`_walk_object` for the top level, inlined (it runs once per tensor)."""
    pairs: list[tuple[str, Any]] = []
    tensors = 0
    pos = _expect(text, 0, "{")
    closed = text[pos : pos + 1] == "}"
    if closed:
        pos += 1
    while not closed:
        if text[pos : pos + 1] != '"':
            raise _Malformed(f"expected a key at {pos}")
        key, pos = _scanstring(text, pos + 1, True)
        colon = _COLON.match(text, pos)
        if colon is None:
            raise _Malformed(f"expected ':' at {pos}")
        value: Any
        if key == "__metadata__":
            value, pos = _metadata(text, colon.end(), file_name)
        else:
            tensors += 1
            if tensors > max_tensors:
                fail("too_many_tensors", f"more than {max_tensors} tensors", file_name)
            try:
                value, pos = _scan_entry(text, colon.end())
            except StopIteration as stop:  # what raw_decode turns into "Expecting value"
                raise _Malformed(f"expected a value at {stop.value}") from None
        pairs.append((key, value))
        after = _NEXT.match(text, pos)
        if after is None:
            raise _Malformed(f"expected ',' at {pos}")
        pos = after.end()
        closed = after.group(1) is not None
    if _skip_ws(text, pos) != len(text):
        raise _Malformed("data after the header object")
    return pairs
