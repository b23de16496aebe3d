"""Merge a PEFT adapter into its base checkpoint, streamed tensor by tensor.

``merge(adapter_dir, base_dir, out_dir)`` writes a full checkpoint equal to what peft 0.21.2's
``merge_and_unload`` gives (the formulas: :mod:`registry.maths.deltas`), without ever holding the
model: shard by shard, each tensor an edit touches is loaded alone, edited in float32 (float64 for
a float64 tensor) and rounded once to the output dtype; every other tensor is copied byte for
byte by the kernel (or only cast, when ``dtype`` asks for another one). A large matrix with only
plain LoRA edits is edited a block of rows at a time (in place, one fused product per block), so
peak memory is then a few MiB plus the adapter; any other edit holds its tensor whole.

The plan (:mod:`registry.maths.plan`) is checked against the base before anything is written;
the output appears in ``out_dir`` only when complete (:func:`registry.maths.checkpoint.staged_dir`).

Errors: :class:`~registry.errors.NotMergeable` (prompt tuning, prefix tuning, p-tuning and every
method without a weight delta; ``context["peft_type"]``),
:class:`~registry.errors.IncompatibleAdapters` (``module_not_in_base``, ``shape_mismatch``), the
validation package's errors for an invalid adapter or base
(:class:`~registry.errors.AdapterInvalid` family), ``BadRequest`` for an unknown ``dtype``,
``FileExistsError`` for an existing non-empty ``out_dir``,
:class:`~registry.errors.MathsUnavailable` without torch; an exception raised by ``progress``
stops the merge and propagates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.errors import BadRequest, IncompatibleAdapters, InvalidAdapterConfig, MissingWeights
from registry.maths import IMPLEMENTATION, require_torch
from registry.maths.checkpoint import (
    OUTPUT_DTYPES,
    BaseLayout,
    config_changes,
    copy_other_files,
    read_layout,
    staged_dir,
    write_json,
)
from registry.maths.deltas import Edit, Loader, LoraDelta, Replace, add_product
from registry.maths.plan import MergePlan, plan_merge, refuse_unmergeable
from registry.maths.report import MergeReport
from registry.maths.st_stream import FLOAT_DTYPES, OutTensor, StFile, StWriter, torch_dtype
from registry.validation.config import MAX_CONFIG_BYTES, parse_config
from registry.validation.files import CONFIG_NAME, WEIGHTS_NAME
from registry.validation.manifest import INDEX_NAME, read_base_dir

if TYPE_CHECKING:
    import torch

Progress = Callable[[int, int], None]

#: A large matrix with only plain LoRA edits is edited this many bytes (float32) of rows at a time.
ROW_BLOCK_BYTES = 4 * 1024 * 1024


@dataclass
class _Counts:
    total: int
    done: int = 0
    rewritten: int = 0
    cast: int = 0
    copied: int = 0
    added: int = 0
    total_size: int = 0


def merge(
    adapter_dir: Path,
    base_dir: Path,
    out_dir: Path,
    *,
    dtype: str = "auto",
    progress: Progress | None = None,
    adapter_ref: str | None = None,
    adapter_digest: str | None = None,
    base_ref: str | None = None,
) -> MergeReport:
    """Merge the adapter in ``adapter_dir`` into the checkpoint in ``base_dir``, into ``out_dir``.

    ``dtype``: ``auto`` keeps each tensor's dtype; ``float32``/``bfloat16``/``float16`` casts
    every floating tensor. ``progress(done, total)`` is called after each base tensor.
    ``adapter_ref``/``adapter_digest``/``base_ref`` are recorded in the report's recipe.

    Raises: see the module docstring.
    """
    adapter_dir, base_dir, out_dir = Path(adapter_dir), Path(base_dir), Path(out_dir)
    if dtype != "auto" and dtype not in OUTPUT_DTYPES:
        raise BadRequest(
            f"dtype must be auto or one of {sorted(OUTPUT_DTYPES)}", context={"field": "dtype"}
        )
    require_torch()
    cfg = parse_config(_read_small(adapter_dir / CONFIG_NAME))
    refuse_unmergeable(cfg)
    weights = adapter_dir / WEIGHTS_NAME
    if not weights.is_file():
        raise MissingWeights(
            f"{WEIGHTS_NAME} is missing", reason="missing_weights", context={"file": WEIGHTS_NAME}
        )
    adapter = StFile(weights)
    manifest = read_base_dir(base_dir)
    plan = plan_merge(cfg, adapter, manifest)
    layout = read_layout(base_dir)
    out_st = OUTPUT_DTYPES.get(dtype)
    counts = _Counts(total=len(manifest.tensors))
    with staged_dir(out_dir) as tmp:
        added_at: dict[str, str] = {}
        for name in layout.files:
            src = StFile(base_dir / name)
            added = [k for k, (host, _) in plan.added.items() if host in src.tensors]
            added_at.update({k: name for k in added})
            job = _FileJob(src, adapter, plan, out_st, added, counts, progress)
            job.write(tmp / name)
        if layout.index is not None:
            write_json(tmp / INDEX_NAME, layout.output_index(added_at, counts.total_size))
        changes = config_changes(base_dir, dtype if out_st else None, plan.untie)
        skipped = copy_other_files(base_dir, tmp, layout, changes)
        files = sorted(p.name for p in tmp.iterdir())
    recipe = _recipe(plan, layout, counts, dtype, skipped, adapter_ref, adapter_digest, base_ref)
    return MergeReport(method=plan.peft_type, out_dir=out_dir, files=files, recipe=recipe)


def _read_small(path: Path, limit: int = MAX_CONFIG_BYTES) -> bytes:
    if not path.is_file():
        raise InvalidAdapterConfig(
            f"{path.name} is missing", reason="missing_config", context={"file": path.name}
        )
    with path.open("rb") as f:
        return f.read(limit + 1)  # parse_config refuses what is over its own cap


class _FileJob:
    """Write one output weights file from one base weights file."""

    def __init__(
        self,
        src: StFile,
        adapter: StFile,
        plan: MergePlan,
        out_st: str | None,
        added: list[str],
        counts: _Counts,
        progress: Progress | None,
    ) -> None:
        self.src, self.adapter, self.plan = src, adapter, plan
        self.out_st, self.added, self.counts, self.progress = out_st, added, counts, progress

    def out_dtype(self, st: str) -> str:
        return self.out_st if self.out_st is not None and st in FLOAT_DTYPES else st

    def write(self, path: Path) -> None:
        header = [
            OutTensor(t.name, self.out_dtype(t.dtype), t.shape) for t in self.src.tensors.values()
        ]
        for key in self.added:
            host = self.src.tensors[self.plan.added[key][0]]
            header.append(OutTensor(key, self.out_dtype(host.dtype), host.shape))
        order = [t.name for t in self.src.in_data_order()] + self.added
        self.counts.total_size += sum(t.nbytes for t in header)
        with StWriter(path, header, order, self.src.header.metadata) as writer:
            for info in self.src.in_data_order():
                edits = self.plan.edits.get(info.name)
                out = self.out_dtype(info.dtype)
                if edits:
                    self.write_edited(writer, info.name, edits, out)
                    self.counts.rewritten += 1
                elif out == info.dtype:
                    writer.copy(info.name, self.src)
                    self.counts.copied += 1
                else:
                    writer.write(info.name, self.src.load(info.name).to(torch_dtype(out)))
                    self.counts.cast += 1
                self.counts.done += 1
                if self.progress is not None:
                    self.progress(self.counts.done, self.counts.total)
            for key in self.added:
                host_name, host_edits = self.plan.added[key]
                out = self.out_dtype(self.src.tensors[host_name].dtype)
                writer.write(key, self.edited(host_name, host_edits, out))
                self.counts.added += 1

    def compute(self, name: str, out: str) -> tuple[torch.dtype, Loader]:
        """Edits run in float32 (float64 if either end is); the adapter loader for that dtype."""
        torch = require_torch()
        wide = "F64" in (out, self.src.tensors[name].dtype)
        compute = torch.float64 if wide else torch.float32

        def load(adapter_name: str) -> Any:
            tensor = self.adapter.load(adapter_name)
            # Integer tensors (sparse indices) stay integers: float32 is exact only below 2**24.
            return tensor.to(compute) if tensor.is_floating_point() else tensor

        return compute, load

    def write_edited(self, writer: StWriter, name: str, edits: list[Edit], out: str) -> None:
        info = self.src.tensors[name]
        by_rows = len(info.shape) == 2 and info.numel * 4 > ROW_BLOCK_BYTES
        deltas = edits[1:] if isinstance(edits[0], Replace) else edits
        if by_rows and all(type(edit) is LoraDelta for edit in deltas):
            writer.write_rows(name, self.edited_rows(name, edits, out))
        else:
            writer.write(name, self.edited(name, edits, out))

    def edited_rows(self, name: str, edits: list[Edit], out: str) -> Iterator[torch.Tensor]:
        """Plain LoRA edits of a large matrix (after a saved copy that replaces it, if any), a
        block of rows at a time (row ``i`` of a LoRA delta needs only row ``i`` of its left
        factor): memory stays a few MiB whatever the tensor, each block rounded once."""
        compute, load = self.compute(name, out)
        shape = self.src.tensors[name].shape
        source, source_name = self.src, name
        if isinstance(edits[0], Replace):
            source, source_name = self.adapter, edits[0].tensor
            if source.tensors[source_name].shape != shape:
                raise _misfit(edits[0], name, shape, "saved copy of another shape")
            edits = edits[1:]
        factors = []
        for edit in edits:
            assert isinstance(edit, LoraDelta)
            left, right = edit.factors(load)
            if (left.shape[0], right.shape[1]) != shape:
                why = f"delta {[left.shape[0], right.shape[1]]}"
                raise _misfit(edit, name, shape, why)
            factors.append((edit, left, right))
        step = max(1, ROW_BLOCK_BYTES // (shape[1] * compute.itemsize))
        for start in range(0, shape[0], step):
            stop = min(shape[0], start + step)
            block = source.load(source_name, rows=(start, stop)).to(compute)
            for edit, left, right in factors:
                try:
                    add_product(block, left[start:stop], right, edit.scaling)
                except (RuntimeError, ValueError) as exc:
                    raise _misfit(edit, name, shape, str(exc)) from exc
            yield block.to(torch_dtype(out))

    def edited(self, name: str, edits: list[Edit], out: str) -> torch.Tensor:
        """Load ``name``, apply ``edits`` in the compute dtype, round once."""
        compute, load = self.compute(name, out)
        weight = self.src.load(name).to(compute)
        shape = weight.shape
        for edit in edits:
            try:
                weight = edit.apply(weight, load)
            except (RuntimeError, ValueError) as exc:
                raise _misfit(edit, name, shape, str(exc)) from exc
            if weight.shape != shape:
                raise _misfit(edit, name, shape, f"result {list(weight.shape)}")
        return weight.to(torch_dtype(out)).contiguous()


def _misfit(edit: Edit, name: str, shape: Any, why: str) -> IncompatibleAdapters:
    return IncompatibleAdapters(
        f"{edit.module}: does not fit {name} {list(shape)}: {why}",
        context={"reason": "shape_mismatch", "tensor": name, "module": edit.module},
    )


def _recipe(
    plan: MergePlan,
    layout: BaseLayout,
    counts: _Counts,
    dtype: str,
    skipped: list[str],
    adapter_ref: str | None,
    adapter_digest: str | None,
    base_ref: str | None,
) -> dict[str, Any]:
    recipe: dict[str, Any] = {
        "implementation": IMPLEMENTATION,
        "operation": "merge",
        "adapter": {"ref": adapter_ref, "digest": adapter_digest},
        "base": {"ref": base_ref},
        "dtype": dtype,
        "peft_type": plan.peft_type,
        "modules_merged": plan.modules,
        "tensors": {
            "total": counts.total,
            "rewritten": counts.rewritten,
            "cast": counts.cast,
            "copied": counts.copied,
            "added": counts.added,
        },
        "layout": "sharded" if layout.index is not None else "single",
    }
    if plan.untie:
        recipe["untied_lm_head"] = True
    if skipped:
        recipe["files_not_copied"] = skipped
    return recipe
