"""A base checkpoint directory as a merge reads and writes it.

Layout: one ``model.safetensors``, or shards named by ``model.safetensors.index.json``; the
output keeps it (same file names, the index's ``weight_map`` keys and order, ``total_size``
recomputed). Every other top-level file (``config.json``, ``generation_config.json``, tokenizer
files, ...) is copied, except weights in any other format, which would still hold the unmerged
model (``*.bin``, ``*.pt``, ``*.pth``, ``*.ckpt``, ``*.h5``, ``*.msgpack``, ``*.gguf``,
``*.onnx``, other ``*.safetensors`` and their indexes); sub-directories are not copied.

The output is written into a temporary sibling directory and renamed into place at the end, so a
failure leaves nothing half-written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.validation.manifest import INDEX_NAME, MAX_INDEX_BYTES, SINGLE_WEIGHTS

_WEIGHT_SUFFIXES = (
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".h5",
    ".msgpack",
    ".gguf",
    ".onnx",
    ".index.json",
)
#: ``dtype`` argument -> (safetensors dtype, config.json ``dtype`` value).
OUTPUT_DTYPES: dict[str, str] = {"float32": "F32", "bfloat16": "BF16", "float16": "F16"}


@dataclass(frozen=True)
class BaseLayout:
    """The weights files of a base directory, and its index when sharded."""

    files: list[str]
    index: dict[str, Any] | None

    def output_index(self, added: dict[str, str], total_size: int) -> dict[str, Any]:
        """The output's index: same ``weight_map`` plus added tensors (name -> file)."""
        assert self.index is not None
        metadata = dict(self.index.get("metadata") or {})
        metadata["total_size"] = total_size
        weight_map = {**self.index["weight_map"], **added}
        return {**self.index, "metadata": metadata, "weight_map": weight_map}


def read_layout(base_dir: Path) -> BaseLayout:
    """Which weights files the base uses (``read_base_dir`` has validated them already)."""
    if (base_dir / SINGLE_WEIGHTS).is_file():
        return BaseLayout(files=[SINGLE_WEIGHTS], index=None)
    index_path = base_dir / INDEX_NAME
    if index_path.stat().st_size > MAX_INDEX_BYTES:
        raise ValueError(f"{INDEX_NAME} larger than {MAX_INDEX_BYTES} bytes")
    index: dict[str, Any] = json.loads(index_path.read_text(encoding="utf-8"))
    shards = list(dict.fromkeys(index["weight_map"].values()))
    return BaseLayout(files=sorted(shards), index=index)


def write_json(path: Path, doc: dict[str, Any]) -> None:
    """JSON as transformers writes it (indent 2, sorted keys, trailing newline)."""
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def copy_other_files(
    base_dir: Path, out: Path, layout: BaseLayout, config_changes: dict[str, Any]
) -> list[str]:
    """Copy the non-weights top-level files; ``config.json`` gets ``config_changes``.

    Returns the names left out (other weight formats, sub-directories).
    """
    skipped: list[str] = []
    for entry in sorted(base_dir.iterdir(), key=lambda p: p.name):
        name = entry.name
        if name in layout.files or name == INDEX_NAME or entry.resolve() == out.resolve():
            continue  # (the staging directory itself when out_dir lies inside base_dir)
        if not entry.is_file() or entry.is_symlink() or name.endswith(_WEIGHT_SUFFIXES):
            skipped.append(name)
        elif name == "config.json" and config_changes:
            config = json.loads(entry.read_text(encoding="utf-8"))
            write_json(out / name, {**config, **config_changes})
        else:
            shutil.copyfile(entry, out / name)
    return skipped


def config_changes(base_dir: Path, dtype: str | None, untie: bool) -> dict[str, Any]:
    """The ``config.json`` keys a merge changes: the dtype keys it has (``dtype`` when it has
    neither ``dtype`` nor ``torch_dtype``) and ``tie_word_embeddings`` when untied."""
    changes: dict[str, Any] = {}
    path = base_dir / "config.json"
    config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    if dtype is not None:
        keys = [k for k in ("dtype", "torch_dtype") if k in config] or ["dtype"]
        changes.update({k: dtype for k in keys})
    if untie:
        changes["tie_word_embeddings"] = False
    return changes


def check_out_dir(out_dir: Path) -> None:
    """Refuse an output directory that exists and is not empty (or is not a directory)."""
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise FileExistsError(f"{out_dir} exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} exists and is not empty")


@contextmanager
def staged_dir(out_dir: Path) -> Iterator[Path]:
    """A temporary sibling of ``out_dir``, renamed to it on success and removed on any error
    (including a cancelling exception raised by a progress callback)."""
    check_out_dir(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp's 0700 would otherwise become the output's mode
        yield tmp
        check_out_dir(out_dir)
        os.replace(tmp, out_dir)  # an empty directory is replaced atomically
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
