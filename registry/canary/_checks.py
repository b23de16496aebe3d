"""Strict checks shared by the rollout-plan parsers (``plans``, ``floor``): each appends a
problem to the caller's error list and returns a harmless stand-in, so one pass reports every
problem of a file at once."""

from __future__ import annotations

import math
from typing import Any

Errors = list[str]


def mapping(value: object, where: str, allowed: frozenset[str], errs: Errors) -> dict[str, Any]:
    if not isinstance(value, dict):
        errs.append(f"{where}: must be a mapping")
        return {}
    unknown = [k for k in value if not isinstance(k, str) or k not in allowed]
    errs.extend(f"{where}: unknown key {k!r}" for k in unknown)
    return {k: v for k, v in value.items() if k not in unknown}


def required(raw: dict[str, Any], key: str, where: str, errs: Errors) -> Any:
    if key not in raw:
        errs.append(f"{where}: missing {key}")
    return raw.get(key)


def number(value: object, where: str, errs: Errors, *, positive: bool = False) -> float:
    found = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        found = float(value)
    if not math.isfinite(found) or found < 0 or (positive and found == 0):
        errs.append(f"{where}: must be a finite number {'> 0' if positive else '>= 0'}")
        return 0.0
    return found


def integer(value: object, where: str, errs: Errors, *, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        errs.append(f"{where}: must be an integer >= {minimum}")
        return minimum
    return value


def choice(value: object, where: str, choices: tuple[str, ...], errs: Errors) -> str:
    if value not in choices:
        errs.append(f"{where}: must be one of {', '.join(choices)}")
        return choices[0]
    return str(value)


def listing(value: object, where: str, errs: Errors) -> list[Any]:
    if not isinstance(value, list):
        errs.append(f"{where}: must be a list")
        return []
    return value
