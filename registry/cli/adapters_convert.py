"""``adapters convert DIR``: turn pickle weights (AdapterHub ``pytorch_adapter.bin``, peft
``adapter_model.bin``) into safetensors locally, with ``torch.load(weights_only=True)``. The
registry refuses pickles; this is the local fix (also for AdapterHub prefix tuning, which
``adapters`` can only save as a pickle: shared tensors keep one name each). Registered on the
``adapters`` group by :mod:`registry.cli.adapters`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from registry.cli._output import OutputOpt, emit, exit_with_error, get_state


def convert(
    ctx: typer.Context,
    src: Annotated[Path, typer.Argument(metavar="DIR", help="Adapter directory with a pickle.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="DIR", help="Write the converted adapter here instead."),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Convert pickle weights in DIR to safetensors, locally (weights-only unpickling).

    Tensors saved under several names (AdapterHub prefix tuning: the pool and a copy per layer)
    keep one name each, the shortest (the pool's), which ``adapters`` loads back.

    JSON: {"dir", "written": [file names]}. Exit 2 (maths_unavailable: no torch), invalid input
    (not a dict of tensors, nothing to convert) exits with invalid_request.
    """
    state = get_state(ctx)
    try:
        import torch  # noqa: F401  (checked before anything is read)
    except ImportError:
        exit_with_error(
            state,
            "maths_unavailable",
            "adapters convert needs torch: pip install 'adapter-registry[maths]'",
            exit_code=2,
        )
    from registry.maths.convert import ConvertError, convert_dir

    try:
        written = convert_dir(src, out)
    except ConvertError as exc:
        exit_with_error(state, "invalid_request", str(exc), {"dir": str(src)})
    target = str(out if out is not None else src)
    emit(
        state,
        {"dir": target, "written": written},
        lambda: f"converted {', '.join(written)} in {target}",
    )
