"""How long (and how much memory) each hostile adapter of issue 11 costs until it is refused.

Each case runs ``validate_adapter`` (defaults, no base) in a fresh child process, timed from the
call until it returns or raises, with the child's peak RSS; a child still running after
``--timeout`` seconds is killed and reported as such. Cases:

* ``regex_redos`` - ``target_modules`` ``model\\.(a|a)*b`` against a module ``model.aaa...a``
  (exponential for a backtracking engine; RE2 answers in linear time).
* ``regex_lookaround`` - the same blow-up inside a lookahead (``model\\.(?=(a|a)*b)``), which
  only a backtracking matcher can run: it must stop at its step budget.
* ``shape_500k_dims`` - one tensor whose shape has 500 000 dimensions (a 3.5 MB header).
* ``metadata_3_5m`` - a 55 MB header with 3.5 M ``__metadata__`` entries.
* ``tokenizer_63mb`` - a valid adapter with a 63 MB ``tokenizer.json``.

``--registry-src DIR`` imports ``registry`` from DIR instead (e.g. an export of main, to get the
"before" figures).

    python -m bench.hostile_validation [--quick] [--timeout S] [--registry-src DIR]
"""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

CASES = ("regex_redos", "regex_lookaround", "shape_500k_dims", "metadata_3_5m", "tokenizer_63mb")
MODULE = "model." + "a" * 30


def _safetensors(header: bytes, data: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header)) + header + data


def _lora_weights(module: str) -> bytes:
    header = {
        "__metadata__": {"format": "pt"},
        f"base_model.model.{module}.lora_A.weight": {
            "dtype": "F32",
            "shape": [1, 2],
            "data_offsets": [0, 8],
        },
        f"base_model.model.{module}.lora_B.weight": {
            "dtype": "F32",
            "shape": [2, 1],
            "data_offsets": [8, 16],
        },
    }
    return _safetensors(json.dumps(header).encode(), b"\x00" * 16)


def _config(**fields: Any) -> bytes:
    base = {"peft_type": "LORA", "r": 1, "lora_alpha": 1, "target_modules": ["q_proj"]}
    return json.dumps({**base, **fields}).encode()


def build(case: str, quick: bool) -> dict[str, bytes]:
    """The adapter files of ``case`` (name -> bytes)."""
    if case == "regex_redos":
        return {
            "adapter_config.json": _config(target_modules=r"model\.(a|a)*b"),
            "adapter_model.safetensors": _lora_weights(MODULE),
        }
    if case == "regex_lookaround":
        return {
            "adapter_config.json": _config(target_modules=r"model\.(?=(a|a)*b)"),
            "adapter_model.safetensors": _lora_weights(MODULE),
        }
    if case == "shape_500k_dims":
        dims = 50_000 if quick else 500_000
        shape = b",".join([b"1000000"] * dims)
        header = b'{"t":{"dtype":"F32","shape":[' + shape + b'],"data_offsets":[0,4]}}'
        return {
            "adapter_config.json": _config(),
            "adapter_model.safetensors": _safetensors(header, b"\x00" * 4),
        }
    if case == "metadata_3_5m":
        count = 350_000 if quick else 3_500_000
        meta = b",".join(b'"k%07d":"v"' % i for i in range(count))
        header = b'{"__metadata__":{' + meta + b"}}"
        return {"adapter_config.json": _config(), "adapter_model.safetensors": _safetensors(header)}
    if case == "tokenizer_63mb":
        count = 120_000 if quick else 1_200_000
        vocab = b",".join(b'"tok\\u00e9n_%07d":%d' % (i, i) for i in range(count))
        merges = b",".join(b'["a%d","b%d"]' % (i, i) for i in range(count))
        tokenizer = b'{"model":{"vocab":{' + vocab + b'},"merges":[' + merges + b"]}}"
        return {
            "adapter_config.json": _config(target_modules=["x"]),
            "adapter_model.safetensors": _lora_weights("model.x"),
            "tokenizer.json": tokenizer,
        }
    raise SystemExit(f"unknown case {case!r}")


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak_rss() -> None:
    # Linux: writing 5 to clear_refs resets VmHWM, so the peak excludes building the input.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _child(case: str, quick: bool, registry_src: str | None) -> None:
    if registry_src:
        sys.path.insert(0, registry_src)
    from registry.errors import RegistryError
    from registry.validation import BytesSource, validate_adapter

    files = build(case, quick)
    sizes = {name: len(data) for name, data in files.items()}
    sources = {name: BytesSource(data) for name, data in files.items()}
    before = _status_kib("VmRSS")
    _reset_peak_rss()
    start = time.perf_counter()
    try:
        validate_adapter(sources, base=None)
        outcome = "accepted"
    except RegistryError as exc:
        outcome = f"{exc.code}/{(exc.context or {}).get('reason', '')}"
    elapsed = time.perf_counter() - start
    peak = _status_kib("VmHWM")
    result = {
        "outcome": outcome,
        "seconds": elapsed,
        "rss_before_mib": before / 1024,
        "peak_rss_mib": peak / 1024,
        "largest_file_mb": max(sizes.values()) / 1e6,
    }
    print(json.dumps(result))


def run_case(case: str, quick: bool, timeout: float, registry_src: str | None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.hostile_validation", "--child", case]
    cmd += ["--quick"] if quick else []
    cmd += ["--registry-src", registry_src] if registry_src else []
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return {"case": case, "outcome": f"still running after {timeout:.0f} s (killed)"}
    except subprocess.CalledProcessError as exc:
        return {"case": case, "outcome": f"crashed: {exc.stderr.strip().splitlines()[-1:]}"}
    return {"case": case, **json.loads(done.stdout.strip().splitlines()[-1])}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller inputs, for a smoke run")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per case")
    parser.add_argument("--registry-src", default=None, help="import registry from this dir")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated subset")
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.quick, args.registry_src)
        return {}
    from bench._common import print_table

    rows = [
        run_case(case, args.quick, args.timeout, args.registry_src)
        for case in args.cases.split(",")
    ]
    print_table(
        "hostile adapters: time until validate_adapter returns (child process, no base)",
        ["case", "largest file MB", "outcome", "seconds", "RSS before MiB", "peak RSS MiB"],
        [
            [
                r["case"],
                r.get("largest_file_mb"),
                r["outcome"],
                r.get("seconds"),
                r.get("rss_before_mib"),
                r.get("peak_rss_mib"),
            ]
            for r in rows
        ],
    )
    return {"cases": rows}


if __name__ == "__main__":
    main()
