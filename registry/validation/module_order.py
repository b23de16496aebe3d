"""Module paths in the order a model registers its layers (no imports of the validator's own:
the method checks that sort paths import it without a cycle)."""

from __future__ import annotations

import re
from typing import Any

_DIGITS = re.compile(r"(\d+)")


def module_order(path: str) -> list[Any]:
    """A sort key: ``layers.2`` before ``layers.10`` (numbers compared as numbers)."""
    return [int(p) if p.isdigit() else p for p in _DIGITS.split(path)]
