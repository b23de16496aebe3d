"""The report every maths operation returns: what was written and the recipe that made it.

The recipe is plain JSON (it becomes the result's lineage): ``implementation``
(:data:`registry.maths.IMPLEMENTATION`), the inputs' references and digests, and the
operation's parameters and counts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, kw_only=True)
class MathsReport:
    """The outcome of one maths operation (``merge``, ``compose``, ``aggregate``).

    ``files`` are the written files' names relative to ``out_dir``, sorted.
    """

    operation: str
    method: str
    out_dir: Path
    files: list[str] = field(default_factory=list)
    recipe: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``out_dir`` as a string); checks the recipe serialises."""
        body = {
            "operation": self.operation,
            "method": self.method,
            "out_dir": str(self.out_dir),
            "files": list(self.files),
            "recipe": self.recipe,
        }
        json.dumps(body, allow_nan=False)
        return body


@dataclass(frozen=True, kw_only=True)
class MergeReport(MathsReport):
    """The report of :func:`registry.maths.merge.merge` (``operation="merge"``; ``method`` is
    the adapter's peft type)."""

    operation: str = "merge"
