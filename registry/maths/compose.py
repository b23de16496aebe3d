"""Compose several LoRA adapters of one base into one (peft's ``add_weighted_adapter``).

Only ``cat`` is here so far: ranks concatenate, ``A = cat(wᵢ·sᵢ·Aᵢ)``, ``B = cat(Bᵢ)``, so the
result's ``B @ A`` is exactly ``Σ wᵢ·sᵢ·BᵢAᵢ`` and its scaling is 1 (``lora_alpha = r``, no
rsLoRA: peft copies the first input's ``use_rslora`` and so scales the sum by ``sqrt(r)``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from registry.maths import require_torch
from registry.maths.combine import (
    Input,
    Progress,
    Report,
    base_recipe,
    check_no_dora,
    check_same_base,
)
from registry.maths.lora import load_lora, refuse, save_lora

METHODS = ("cat",)


def compose(
    inputs: Sequence[Input],
    out_dir: Path,
    *,
    method: str,
    rank: int | None = None,
    density: float | None = None,
    seed: int | None = None,
    majority_sign_method: str = "total",
    progress: Progress | None = None,
) -> Report:
    """Combine ``inputs`` with ``method`` into a new adapter written to ``out_dir`` (which must
    not exist or be empty). Raises ``IncompatibleAdapters`` for inputs that cannot be combined."""
    torch = require_torch()
    if method not in METHODS:
        raise refuse("unknown_method", f"unknown compose method {method!r}", method=method)
    if not inputs:
        raise refuse("no_inputs", "compose needs at least one input")
    adapters = [load_lora(i.path) for i in inputs]
    check_same_base(adapters)
    check_no_dora(adapters)
    names = sorted(set().union(*(a.modules for a in adapters)))
    modules: dict[str, tuple[str, Any, Any]] = {}
    for done, name in enumerate(names, 1):
        parts = [
            (i.weight, a.modules[name])
            for i, a in zip(inputs, adapters, strict=True)
            if name in a.modules
        ]
        kinds = {m.kind for _, m in parts}
        if len(kinds) > 1:
            raise refuse("mixed_module_kinds", f"{name}: embedding and linear LoRA", module=name)
        a = torch.cat([w * m.scaling * m.a for w, m in parts], dim=0)
        b = torch.cat([m.b for _, m in parts], dim=1)
        modules[name] = (kinds.pop(), a, b)
        if progress is not None:
            progress(done, len(names))
    new_rank = max(a.shape[0] for _, a, _ in modules.values())
    config = adapters[0].raw | {
        "r": new_rank,
        "lora_alpha": new_rank,
        "use_rslora": False,
        "rank_pattern": {
            n: a.shape[0] for n, (_, a, _) in modules.items() if a.shape[0] != new_rank
        },
        "alpha_pattern": {
            n: a.shape[0] for n, (_, a, _) in modules.items() if a.shape[0] != new_rank
        },
        "target_modules": sorted({n.rsplit(".", 1)[-1] for n in names}),
    }
    recipe = base_recipe("compose", method, inputs, rank=rank, density=density, seed=seed)
    return _write(out_dir, config, modules, Report("compose", method, out_dir, [], recipe))


def _write(
    out_dir: Path, config: dict[str, Any], modules: dict[str, Any], report: Report
) -> Report:
    if out_dir.exists() and any(out_dir.iterdir()):
        raise refuse("output_exists", f"{out_dir} exists and is not empty", path=str(out_dir))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".compose-", dir=out_dir.parent))
    try:
        files = save_lora(tmp, config, modules)
        if out_dir.exists():
            out_dir.rmdir()
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Report(report.operation, report.method, out_dir, files, report.recipe)
