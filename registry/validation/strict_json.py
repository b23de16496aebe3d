"""Strict JSON decoding hooks shared by every parser of untrusted JSON (adapter configs, text
extras, safetensors headers, API request bodies): duplicate keys and the non-standard constants
``NaN``/``Infinity`` are refused, since different parsers read them differently."""

from __future__ import annotations

from typing import Any, NoReturn


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def reject_constant(value: str) -> NoReturn:
    """``parse_constant`` hook: ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON."""
    raise ValueError(f"non-standard JSON constant {value}")


def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook``: a dict, or :class:`DuplicateKey` for a key given twice."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(key)
        out[key] = value
    return out
