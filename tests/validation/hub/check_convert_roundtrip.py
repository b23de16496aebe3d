"""Check that ``adapters`` loads back what ``adapter-registry adapters convert`` writes from its
pickle saves (prefix tuning, whose tensors are shared, and a bottleneck adapter): same
parameters and same outputs as loading the pickle. Needs the ``adapters`` environment of
make_fixtures.py (not the test venv)::

    /tmp/hub-venv/bin/python tests/validation/hub/check_convert_roundtrip.py

Prints one line per fixture and exits non-zero on a difference.
"""
# mypy: disable-error-code="import-not-found"

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(Path(__file__).parents[3]))


def main() -> int:
    import torch
    from adapters import AutoAdapterModel

    from registry.maths.convert import convert_dir

    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in (
            "prefix_pickle",
            "prefix_flat_pickle",
            "seq_pickle",
            "ln_before_pickle",
            "cpp_ln_pickle",
        ):
            out = Path(tmp) / name
            convert_dir(FIXTURES / name, out)
            models, names = [], []
            for src, safe in ((FIXTURES / name, False), (out, True)):
                model = AutoAdapterModel.from_pretrained(FIXTURES / "bert-base")
                names.append(model.load_adapter(str(src), use_safetensors=safe))
                model.set_active_adapters(names[-1])
                models.append(model.eval())
            states = [
                {k: v for k, v in m.state_dict().items() if n in k}
                for m, n in zip(models, names, strict=True)
            ]
            same = states[0].keys() == states[1].keys() and all(
                torch.equal(states[0][k], states[1][k]) for k in states[0]
            )
            ids = torch.randint(0, 128, (1, 7))
            with torch.no_grad():
                outputs = [m(ids)[0] for m in models]
            same = same and torch.equal(outputs[0], outputs[1])
            failed += not same
            sys.stdout.write(
                f"{name}: {len(states[1])} parameters, {'same' if same else 'DIFFERENT'}\n"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
