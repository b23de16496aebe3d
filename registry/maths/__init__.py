"""Adapter maths: merge an adapter into its base, compose adapters, aggregate federated sites.

Pure computation on files (no database, no HTTP): the CLI runs it client-side, the jobs domain
server-side. torch is an optional extra (``pip install adapter-registry[maths]``), imported
lazily through :func:`require_torch`, so the server and CLI start without it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from registry.errors import MathsUnavailable

#: Recorded in every recipe, so that a result can be traced to the code that computed it.
IMPLEMENTATION = "adapter-registry-maths/1"


def require_torch() -> ModuleType:
    """torch, or ``MathsUnavailable`` (501) when the maths extra is not installed."""
    try:
        return importlib.import_module("torch")
    except ImportError as exc:
        raise MathsUnavailable(
            "adapter maths needs torch: pip install 'adapter-registry[maths]'",
            context={"missing": "torch"},
        ) from exc
