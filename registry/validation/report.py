"""The validation report: what a valid adapter is."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ValidationReport:
    """What a valid adapter is: method, ranks, targets, sizes, and non-fatal warnings."""

    peft_type: str
    task_type: str | None
    base_model_name_or_path: str | None
    revision: str | None
    r: int | None
    lora_alpha: float | None
    target_modules: list[str]
    rank_pattern: dict[str, Any]
    use_dora: bool
    use_rslora: bool
    modules_to_save: list[str] | None
    dtype: str | None
    #: Elements of the saved tensors less the buffers (a method table's ``Role.buffer`` and
    #: ``indices``: random projections, SVD factors, indices): peft's trainable parameters.
    trainable_params: int
    #: Every saved tensor, buffers included.
    tensor_count: int
    files: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    checked_against_base: bool = False

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (plain lists/dicts, no tuples)."""
        return dataclasses.asdict(self)
