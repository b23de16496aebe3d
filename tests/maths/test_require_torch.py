"""The maths extra is optional: without torch the maths answers 501 maths_unavailable."""

from __future__ import annotations

import subprocess
import sys

from registry.maths import require_torch


def test_require_torch_gives_torch_when_installed() -> None:
    torch = require_torch()
    assert torch.__name__ == "torch"
    assert torch.zeros(2).sum().item() == 0.0


def test_without_torch_the_maths_refuses_with_maths_unavailable() -> None:
    # A fake by necessity: the test environment has torch; ``sys.modules["torch"] = None``
    # makes ``import torch`` fail in a fresh interpreter exactly as on an install without it.
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from registry.errors import MathsUnavailable\n"
        "from registry.maths import require_torch\n"
        "try:\n    require_torch()\nexcept MathsUnavailable as e:\n"
        "    print(e.code, e.status_code, e.context['missing'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["maths_unavailable", "501", "torch"]
