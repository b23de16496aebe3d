"""Convert a pickle weights file (AdapterHub ``pytorch_adapter.bin``, peft ``adapter_model.bin``)
to safetensors, locally, with ``torch.load(weights_only=True)``: the restricted unpickler loads
tensors and plain containers only, never arbitrary callables. Never run on the server.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

#: Pickle weights file -> the safetensors name its library reads.
PICKLE_TO_SAFETENSORS: dict[str, str] = {
    "pytorch_adapter.bin": "adapter.safetensors",
    "adapter_model.bin": "adapter_model.safetensors",
    "pytorch_model_head.bin": "model_head.safetensors",
    "pytorch_model_adapter_fusion.bin": "model_adapter_fusion.safetensors",
}


class ConvertError(ValueError):
    """The directory holds nothing to convert, or a pickle that is not a flat dict of tensors."""


def _load_tensors(path: Path) -> dict[str, Any]:
    import torch  # lazy: the maths extra

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # the restricted unpickler refuses anything but tensors/containers
        raise ConvertError(
            f"{path.name}: not a weights-only pickle ({type(exc).__name__})"
        ) from exc
    if not isinstance(loaded, dict) or not loaded:
        raise ConvertError(f"{path.name}: expected a non-empty dict of tensors")
    for key, value in loaded.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise ConvertError(f"{path.name}: entry {str(key)[:80]!r} is not a named tensor")
    return _one_name_per_tensor(loaded)


def _one_name_per_tensor(loaded: dict[str, Any]) -> dict[str, Any]:
    """safetensors refuses tensors that share memory; ``adapters`` pickles prefix tuning with the
    pool's tensors also named under every layer. Keep one name per tensor - the shortest (then
    the first in order): the pool's ``<prefix>.prefix_tuning.prefix_tunings.<name>...``, which
    ``adapters`` loads back into the one shared module - and copy each kept tensor so no two
    kept ones share memory (partly overlapping views stay, as copies)."""
    kept: dict[tuple[Any, ...], str] = {}
    for key in sorted(loaded, key=lambda k: (len(k), k)):
        value = loaded[key]
        same = (value.data_ptr(), tuple(value.shape), value.stride(), value.dtype)
        kept.setdefault(same, key)
    return {key: loaded[key].detach().clone().contiguous() for key in sorted(kept.values())}


def convert_dir(src: Path, out: Path | None = None) -> list[str]:
    """Convert every known pickle weights file in ``src`` to safetensors.

    With ``out``, the other files are copied there and ``src`` is left as is; without it the
    conversion happens in place and each pickle is removed once its safetensors is written.
    Returns the names of the safetensors files written.

    Raises:
        ConvertError: no known pickle in ``src``, or one that is not a dict of tensors.
        ImportError: torch or safetensors' torch support is missing.
    """
    from safetensors.torch import save_file

    pickles = [src / n for n in PICKLE_TO_SAFETENSORS if (src / n).is_file()]
    if not pickles:
        raise ConvertError(f"no pickle weights file ({', '.join(PICKLE_TO_SAFETENSORS)}) in {src}")
    target = src if out is None else out
    loaded = {p.name: _load_tensors(p) for p in pickles}  # all checked before anything is written
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for item in src.iterdir():
            if item.is_file() and item.name not in PICKLE_TO_SAFETENSORS:
                shutil.copy2(item, out / item.name)
    written = []
    for name, tensors in loaded.items():
        new_name = PICKLE_TO_SAFETENSORS[name]
        save_file(tensors, str(target / new_name), metadata={"format": "pt"})
        written.append(new_name)
        if out is None:
            (src / name).unlink()
    return written
