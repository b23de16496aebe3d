"""What compose and aggregate share: their inputs, writing their result, and the checks that several
LoRA adapters can be combined at all."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.maths import IMPLEMENTATION
from registry.maths.lora import LoraAdapter, refuse, save_lora
from registry.maths.report import MathsReport

#: ``progress(done, total)``, called as work advances; raising from it stops the operation
#: (that is how a server job is cancelled) and nothing is left in the output directory.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Input:
    """One adapter to combine: its directory, its weight (compose: a coefficient; aggregate:
    a sample count), and where it came from, recorded in the recipe."""

    path: Path
    weight: float
    ref: str | None = None
    digest: str | None = None

    def recipe(self) -> dict[str, Any]:
        return {"ref": self.ref, "digest": self.digest, "weight": self.weight}


def base_recipe(
    operation: str, method: str, inputs: Sequence[Input], **params: Any
) -> dict[str, Any]:
    return {
        "operation": operation,
        "method": method,
        "implementation": IMPLEMENTATION,
        "inputs": [i.recipe() for i in inputs],
        "parameters": params,
    }


def check_same_base(adapters: Sequence[LoraAdapter]) -> None:
    """Every input names the same base (``base_model_name_or_path``, when they say one)."""
    named = {a.config.base_model_name_or_path or "" for a in adapters} - {""}
    if len(named) > 1:
        raise refuse(
            "different_bases",
            f"inputs were trained on different bases: {sorted(named)}",
            bases=sorted(str(n) for n in named),
        )


def check_no_dora(adapters: Sequence[LoraAdapter]) -> None:
    """DoRA magnitudes are per-adapter norms of a merged weight: no weighted sum of them is
    the magnitude of the combined adapter, so DoRA inputs are refused."""
    if any(a.use_dora for a in adapters):
        raise refuse("dora_not_combinable", "DoRA adapters cannot be combined exactly")


def check_empty(out_dir: Path) -> None:
    """Refuse (``output_exists``) an output directory that exists and is not empty: checked
    before any work, and again just before writing."""
    if out_dir.exists() and any(out_dir.iterdir()):
        raise refuse("output_exists", f"{out_dir} exists and is not empty", path=str(out_dir))


def write_adapter(
    out_dir: Path,
    config: Mapping[str, Any],
    modules: Mapping[str, Any],
    report: MathsReport,
    *,
    extra: Mapping[str, Any] | None = None,
) -> MathsReport:
    """Write the adapter (see :func:`registry.maths.lora.save_lora`) into a temporary sibling
    of ``out_dir``, renamed to ``out_dir`` once complete, so that a failure leaves nothing;
    ``out_dir`` must not exist or be empty (else ``output_exists``). Returns ``report`` with
    the files written."""
    check_empty(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{report.operation}-", dir=out_dir.parent))
    try:
        files = save_lora(tmp, config, modules, extra=extra)
        if out_dir.exists():
            out_dir.rmdir()
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dataclasses.replace(report, out_dir=out_dir, files=files)
