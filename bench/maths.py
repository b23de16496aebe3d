"""Adapter maths beside peft on the same machine (issue 13).

1. **merge**: a ~250 M-parameter Llama-shaped base (random weights, bf16 and fp32, one
   safetensors file) and a LoRA r=16 on all seven projections. Ours: ``registry.maths.merge``
   file → file. peft: ``from_pretrained`` + ``PeftModel.from_pretrained`` + ``merge_and_unload``
   + ``save_pretrained``; its ``merge_and_unload`` alone is timed too. Every run is a fresh
   subprocess: its peak RSS is the kernel's ``ru_maxrss`` of that child (``os.wait4``); "own"
   is that minus the RSS once the side's libraries were imported (torch alone is ~300 MiB,
   more than the whole target), i.e. what the operation itself needed.
   Targets: time ≤ 1.0x peft's ``merge_and_unload``; own peak RSS ≤ 10 % of peft's.
2. **compose svd**: two LoRA r=16 adapters on 4096x4096 modules. Ours: ``compose(method="svd")``
   (QR of the stacked factors, SVD of a small core); peft: ``add_weighted_adapter(...,
   combination_type="svd")`` (dense SVD of ΔW). Target: ≥ 100x faster.

    python -m bench.maths [--quick]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._common import mark, parse_args, print_table, wait_for_quiet, write_json

NAME = "maths"
MERGE_TIME_RATIO = 1.0
MERGE_RSS_SHARE = 0.10
SVD_SPEEDUP = 100.0


def _llama(hidden: int, inter: int, layers: int, vocab: int, heads: int) -> dict[str, Any]:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "vocab_size": vocab,
        "max_position_embeddings": 256,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": False,
    }


def _modules(cfg: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Linear modules of one layer: name -> (out, in)."""
    h, i = cfg["hidden_size"], cfg["intermediate_size"]
    return {
        "self_attn.q_proj": (h, h),
        "self_attn.k_proj": (h, h),
        "self_attn.v_proj": (h, h),
        "self_attn.o_proj": (h, h),
        "mlp.gate_proj": (i, h),
        "mlp.up_proj": (i, h),
        "mlp.down_proj": (h, i),
    }


def make_base(path: Path, cfg: dict[str, Any], dtype: str) -> int:
    """A random-weight Llama checkpoint written tensor by tensor (never the whole model)."""
    import torch
    from safetensors.torch import save_file

    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(cfg | {"torch_dtype": dtype}))
    tdtype = getattr(torch, dtype)
    gen = torch.Generator().manual_seed(0)
    h, v = cfg["hidden_size"], cfg["vocab_size"]
    tensors: dict[str, Any] = {
        "model.embed_tokens.weight": torch.randn(v, h, generator=gen).to(tdtype),
        "model.norm.weight": torch.ones(h, dtype=tdtype),
        "lm_head.weight": torch.randn(v, h, generator=gen).to(tdtype),
    }
    for layer in range(cfg["num_hidden_layers"]):
        pre = f"model.layers.{layer}."
        for name, (out, inp) in _modules(cfg).items():
            w = torch.randn(out, inp, generator=gen) * 0.02
            tensors[pre + name + ".weight"] = w.to(tdtype)
        tensors[pre + "input_layernorm.weight"] = torch.ones(h, dtype=tdtype)
        tensors[pre + "post_attention_layernorm.weight"] = torch.ones(h, dtype=tdtype)
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    return sum(t.numel() for t in tensors.values())


def make_lora(
    path: Path, cfg: dict[str, Any], rank: int, seed: int, targets: Sequence[str] | None = None
) -> None:
    """A LoRA adapter with non-zero A and B on ``targets`` (default: all seven projections)."""
    import torch
    from safetensors.torch import save_file

    path.mkdir(parents=True)
    gen = torch.Generator().manual_seed(seed)
    wanted = [m for m in _modules(cfg) if targets is None or m.split(".")[-1] in targets]
    tensors = {}
    for layer in range(cfg["num_hidden_layers"]):
        for name in wanted:
            out, inp = _modules(cfg)[name]
            key = f"base_model.model.model.layers.{layer}.{name}"
            tensors[key + ".lora_A.weight"] = torch.randn(rank, inp, generator=gen) * 0.01
            tensors[key + ".lora_B.weight"] = torch.randn(out, rank, generator=gen) * 0.01
    save_file(tensors, str(path / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": rank,
        "lora_alpha": 2 * rank,
        "lora_dropout": 0.0,
        "target_modules": sorted({m.split(".")[-1] for m in wanted}),
        "bias": "none",
        "fan_in_fan_out": False,
        "base_model_name_or_path": "bench-llama",
        "inference_mode": True,
    }
    (path / "adapter_config.json").write_text(json.dumps(config))


# --- workers: each runs in a fresh subprocess so that its peak RSS is its own -----------------


def _worker(kind: str, args: list[str]) -> dict[str, Any]:
    figures = _work(kind, args)
    # Peak RSS when the work started (interpreter, torch and the side's libraries imported):
    # what the operation itself needed is the child's peak minus this.
    figures["start_rss_mib"] = _START_RSS_MIB
    return figures


_START_RSS_MIB = 0.0


def _imported(*modules: str) -> None:
    """Import what a side needs, then note the RSS reached so far."""
    import importlib
    import resource

    global _START_RSS_MIB
    for module in modules:
        importlib.import_module(module)
    _START_RSS_MIB = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _work(kind: str, args: list[str]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    if kind == "make-base":
        path, cfg, dtype = args
        return {"params": make_base(Path(path), json.loads(cfg), dtype)}
    if kind == "make-lora":
        path, cfg, rank, seed, targets = args
        wanted = json.loads(targets)
        make_lora(Path(path), json.loads(cfg), int(rank), int(seed), wanted)
        return {}
    if kind == "merge-ours":
        _imported("registry.maths.merge")
        from registry.maths.merge import merge

        adapter, base, out, dtype = args
        t0 = time.perf_counter()
        merge(Path(adapter), Path(base), Path(out), dtype=dtype)
        return {"total_s": time.perf_counter() - t0}
    if kind == "merge-peft":
        _imported("peft", "transformers")
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        adapter, base, out, dtype = args
        t0 = time.perf_counter()
        model = AutoModelForCausalLM.from_pretrained(base, dtype=getattr(torch, dtype))
        peft_model = PeftModel.from_pretrained(model, adapter)
        t1 = time.perf_counter()
        merged = peft_model.merge_and_unload()
        t2 = time.perf_counter()
        merged.save_pretrained(out, safe_serialization=True)
        t3 = time.perf_counter()
        return {"total_s": t3 - t0, "merge_and_unload_s": t2 - t1, "load_s": t1 - t0}
    if kind == "svd-ours":
        from registry.maths.combine import Input
        from registry.maths.compose import compose

        a, b, out, rank = args
        t0 = time.perf_counter()
        compose([Input(Path(a), 0.6), Input(Path(b), 0.4)], Path(out), method="svd", rank=int(rank))
        return {"total_s": time.perf_counter() - t0}
    if kind == "svd-peft":
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        a, b, base, rank = args
        model = AutoModelForCausalLM.from_pretrained(base)
        pm = PeftModel.from_pretrained(model, a, adapter_name="a")
        pm.load_adapter(b, adapter_name="b")
        t0 = time.perf_counter()
        pm.add_weighted_adapter(["a", "b"], [0.6, 0.4], "c", "svd", svd_rank=int(rank))
        return {"total_s": time.perf_counter() - t0}
    raise SystemExit(f"unknown worker {kind}")


def run_child(kind: str, *args: str) -> dict[str, Any]:
    """Run one worker in a fresh interpreter; its figures plus its peak RSS (MiB)."""
    cmd = [sys.executable, "-m", "bench.maths", "--worker", kind, *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parents[1])
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} failed with {proc.returncode}")
    figures: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    figures["peak_rss_mib"] = usage.ru_maxrss / 1024
    return figures


# The test data is made in children too: Linux carries a process's peak RSS across exec, so a
# parent that held a model's tensors would hand that peak to every child it starts.


def _make_base(path: Path, cfg: dict[str, Any], dtype: str) -> int:
    return int(run_child("make-base", str(path), json.dumps(cfg), dtype)["params"])


def _make_lora(
    path: Path, cfg: dict[str, Any], rank: int, seed: int, targets: list[str] | None = None
) -> None:
    run_child("make-lora", str(path), json.dumps(cfg), str(rank), str(seed), json.dumps(targets))


def bench_merge(tmp: Path, quick: bool) -> list[dict[str, Any]]:
    cfg = _llama(256, 704, 4, 8000, 4) if quick else _llama(1024, 2816, 16, 32000, 16)
    rows = []
    for dtype in ("bfloat16", "float32"):
        base = tmp / f"base-{dtype}"
        params = _make_base(base, cfg, dtype)
        adapter = tmp / f"lora-{dtype}"
        _make_lora(adapter, cfg, 16, seed=1)
        ours = run_child("merge-ours", str(adapter), str(base), str(tmp / f"ours-{dtype}"), "auto")
        peft = run_child("merge-peft", str(adapter), str(base), str(tmp / f"peft-{dtype}"), dtype)
        rows.append({"dtype": dtype, "params": params, "ours": ours, "peft": peft})
    return rows


def bench_svd(tmp: Path, quick: bool) -> dict[str, Any]:
    hidden = 1024 if quick else 4096
    cfg = _llama(hidden, 128, 1, 128, 16) | {"tie_word_embeddings": False}
    base = tmp / "svd-base"
    _make_base(base, cfg, "float32")
    a, b = tmp / "svd-a", tmp / "svd-b"
    _make_lora(a, cfg, 16, seed=2, targets=["q_proj"])
    _make_lora(b, cfg, 16, seed=3, targets=["q_proj"])
    ours = run_child("svd-ours", str(a), str(b), str(tmp / "svd-out"), "16")
    peft = run_child("svd-peft", str(a), str(b), str(base), "16")
    return {"module": f"{hidden}x{hidden}", "modules": 1, "ours": ours, "peft": peft}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(__doc__ or NAME, argv)
    busy = wait_for_quiet()
    with tempfile.TemporaryDirectory(prefix="bench-maths-") as tmp:
        merges = bench_merge(Path(tmp), args.quick)
        svd = bench_svd(Path(tmp), args.quick)
    merge_rows = []
    ok = True
    for m in merges:
        ratio = m["ours"]["total_s"] / m["peft"]["merge_and_unload_s"]
        ours_own = m["ours"]["peak_rss_mib"] - m["ours"]["start_rss_mib"]
        peft_own = m["peft"]["peak_rss_mib"] - m["peft"]["start_rss_mib"]
        share = ours_own / peft_own
        good = ratio <= MERGE_TIME_RATIO and share <= MERGE_RSS_SHARE
        ok &= good
        merge_rows.append(
            [
                m["dtype"],
                f"{m['params'] / 1e6:.0f} M",
                f"{m['ours']['total_s']:.2f}",
                f"{m['peft']['merge_and_unload_s']:.2f}",
                f"{m['peft']['total_s']:.2f}",
                f"{ratio:.2f}x",
                f"{m['ours']['peak_rss_mib']:.0f} ({ours_own:.0f})",
                f"{m['peft']['peak_rss_mib']:.0f} ({peft_own:.0f})",
                f"{share:.1%}",
                mark(good),
            ]
        )
    print_table(
        "merge: ours file→file vs peft (merge_and_unload alone; whole load+merge+save)",
        [
            "dtype",
            "params",
            "ours s",
            "peft m&u s",
            "peft total s",
            "ours/m&u",
            "ours MiB (own)",
            "peft MiB (own)",
            "own RSS share",
            "target",
        ],
        merge_rows,
    )
    speedup = svd["peft"]["total_s"] / svd["ours"]["total_s"]
    ok &= speedup >= SVD_SPEEDUP
    print_table(
        "compose svd: ours (low-rank QR + small SVD) vs peft add_weighted_adapter (dense SVD)",
        ["module", "ours s", "peft s", "speed-up", "target"],
        [
            [
                svd["module"],
                f"{svd['ours']['total_s']:.3f}",
                f"{svd['peft']['total_s']:.2f}",
                f"{speedup:.0f}x",
                mark(speedup >= SVD_SPEEDUP),
            ]
        ],
    )
    payload = {"quick": args.quick, "busy_before_pct": busy, "merge": merges, "svd": svd, "ok": ok}
    write_json(NAME, payload)
    return payload


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        print(json.dumps(_worker(sys.argv[2], sys.argv[3:])))
    else:
        main()
