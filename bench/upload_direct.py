"""A large push through the API vs a direct upload to S3, side by side in one run.

Set-up: a real SeaweedFS S3 server (``weed server -s3`` on loopback, tests/fixtures/seaweedfs.py;
moto's server is far slower for GiB payloads and would measure moto), a registry server
subprocess on the S3 backend (SQLite, one worker, its job worker on), and a valid LoRA of the
tiny gpt2 base whose ``adapter_model.safetensors`` is 2 GiB (``--size-mib``; 256 MiB with
``--quick``), written by tests/factories/big_lora.py.

Each round pushes it twice with the real client (``RegistryClient.push``), as a new adapter:

- **api**: ``direct=False``: every byte through ``PUT /api/v1/uploads/{id}/files/{name}`` (the
  server hashes it in flight, writes it to staging, and on registration re-hashes the staged
  object before publishing it);
- **direct**: presigned multipart parts straight to SeaweedFS (4 in flight, 64 MiB parts), then
  registration (headers only) and the ``verify`` job (the server re-hashes the stored object);
  the wall time runs until the version is ``validated``.

Both include the client's first pass that hashes the file. Server CPU is the registry process's
``utime + stime`` (``/proc/<pid>/stat``) over the push, per GiB pushed; SeaweedFS's
CPU is reported beside it (the store's work, not the registry's). Client, registry and store
share the machine's cores.

    python -m bench.upload --direct [--quick] [--size-mib N] [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._common import (
    mark,
    migrate_and_bootstrap,
    print_table,
    running,
    scratch_database,
    setup_catalog,
    start_registry,
    wait_for_quiet,
    write_json,
)

NAME = "upload_direct"
MIB = 1024**2
GIB = 1024**3
TARGET_SPEEDUP = 2.0
TARGET_CPU_RATIO = 5.0
IDLE_WINDOW_S = 10.0


def _big_volumes() -> None:
    """The test fixture starts SeaweedFS with 64 MB volumes (one per test bucket, many
    buckets); a GiB payload would spend its time growing volumes, so use 1 GB ones here."""
    from tests.fixtures import seaweedfs

    command = seaweedfs._command

    def bigger(*args: Any) -> Any:
        argv, port, sockets = command(*args)
        argv = [a.replace("volumeSizeLimitMB=64", "volumeSizeLimitMB=1024") for a in argv]
        return argv, port, sockets

    seaweedfs._command = bigger  # type: ignore[assignment]


def _stat(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    # comm (field 2) may hold spaces: split after its closing parenthesis.
    open_, close = raw.index(" ("), raw.rindex(")")
    return [raw[:open_], raw[open_ + 2 : close], *raw[close + 2 :].split()]


def _cpu_s(pid: int) -> float:
    """utime + stime (+ those of reaped children) of ``pid``, from ``/proc/<pid>/stat``."""
    fields = _stat(pid)
    return sum(int(fields[i]) for i in (13, 14, 15, 16)) / os.sysconf("SC_CLK_TCK")


def _weed(parent: int) -> int | None:
    """The ``weed`` process started by this one."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = _stat(int(entry.name))
            except (OSError, ValueError):
                continue
            if fields[1] == "weed" and int(fields[3]) == parent:
                return int(entry.name)
    return None


def _push(
    server_url: str, token: str, directory: Path, adapter: str, base: str, direct: bool
) -> dict[str, Any]:
    from registry.client import RegistryClient

    paths = sorted(p for p in directory.iterdir() if p.is_file())
    with RegistryClient(server_url, token, timeout=1800.0) as client:
        version = client.push("bench", adapter, paths, {"base": base}, direct=direct)
    if version.get("state") != "validated":
        raise RuntimeError(f"{adapter}: version ended {version.get('state')}: {version}")
    return version


def _args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="push through the API vs direct to S3")
    parser.add_argument("--quick", action="store_true", help="256 MiB, one round")
    parser.add_argument("--size-mib", type=int, default=None, help="weights file size (MiB)")
    parser.add_argument("--rounds", type=int, default=None, help="pushes of each kind")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from tests.factories.big_lora import write_big_lora
    from tests.fixtures.s3 import S3_REGION
    from tests.fixtures.seaweedfs import WEED_ACCESS_KEY, WEED_SECRET_KEY, running_seaweedfs

    args = _args(argv)
    _big_volumes()
    size = (args.size_mib or (256 if args.quick else 2048)) * MIB
    rounds = args.rounds or (1 if args.quick else 2)
    busy = wait_for_quiet()
    results: dict[str, list[dict[str, float]]] = {"api": [], "direct": []}
    with tempfile.TemporaryDirectory(prefix="bench-direct-") as tmp_s:
        tmp = Path(tmp_s)
        t0 = time.perf_counter()
        write_big_lora(tmp / "lora", data_bytes=size, seed=7)
        (tmp / "weed").mkdir()
        total = sum(p.stat().st_size for p in (tmp / "lora").iterdir())
        print(f"  wrote a {total / MIB:,.0f} MiB adapter in {time.perf_counter() - t0:.1f} s")
        with (
            running_seaweedfs(tmp / "weed") as (endpoint, _log),
            scratch_database("sqlite", tmp, "direct") as url,
        ):
            import boto3

            boto3.session.Session().client(
                "s3",
                endpoint_url=endpoint,
                region_name=S3_REGION,
                aws_access_key_id=WEED_ACCESS_KEY,
                aws_secret_access_key=WEED_SECRET_KEY,
            ).create_bucket(Bucket="bench-direct")
            token = migrate_and_bootstrap(url)
            server = start_registry(
                url,
                tmp,
                "direct",
                REGISTRY_STORAGE__BACKEND="s3",
                REGISTRY_STORAGE__BUCKET="bench-direct",
                REGISTRY_STORAGE__ENDPOINT_URL=endpoint,
                REGISTRY_STORAGE__ACCESS_KEY_ID=WEED_ACCESS_KEY,
                REGISTRY_STORAGE__SECRET_ACCESS_KEY=WEED_SECRET_KEY,
                REGISTRY_STORAGE__READ_TIMEOUT_S="120",
                REGISTRY_JOBS__POLL_S="0.2",
                REGISTRY_CONTROLLER__ENABLED="false",
            )
            with running(server):
                import httpx

                with httpx.Client(
                    base_url=server.url, headers={"Authorization": f"Bearer {token}"}
                ) as c:
                    base = setup_catalog(c)
                registry = server.pid
                weed = _weed(os.getpid())
                # The idle server still polls (job worker, routing, webhooks): measured, so the
                # push's own CPU can be shown net of it too.
                idle0, t_idle = _cpu_s(registry), time.perf_counter()
                time.sleep(IDLE_WINDOW_S)
                idle_rate = (_cpu_s(registry) - idle0) / (time.perf_counter() - t_idle)
                print(f"  registry idle CPU: {idle_rate * 1000:.1f} ms per s", flush=True)
                for n in range(rounds):
                    for kind in ("api", "direct"):
                        time.sleep(2.0)  # let the previous push's background work settle
                        cpu0 = _cpu_s(registry)
                        weed0 = _cpu_s(weed) if weed else 0.0
                        t0 = time.perf_counter()
                        _push(
                            server.url, token, tmp / "lora", f"{kind}-{n}", base, kind == "direct"
                        )
                        wall = time.perf_counter() - t0
                        cpu = _cpu_s(registry) - cpu0
                        weed_cpu = (_cpu_s(weed) - weed0) if weed else float("nan")
                        gib = total / GIB
                        row = {
                            "wall_s": round(wall, 2),
                            "mib_s": round(total / MIB / wall, 1),
                            "server_cpu_s_per_gib": round(cpu / gib, 3),
                            "server_net_cpu_s_per_gib": round((cpu - idle_rate * wall) / gib, 3),
                            "store_cpu_s_per_gib": round(weed_cpu / gib, 3),
                        }
                        results[kind].append(row)
                        print(f"  {kind:6} round {n + 1}: {row}", flush=True)
    return _report(results, total, rounds, busy)


def _report(
    results: dict[str, list[dict[str, float]]], total: int, rounds: int, busy: float
) -> dict[str, Any]:
    def med(kind: str, key: str) -> float:
        return float(statistics.median(r[key] for r in results[kind]))

    speedup = med("api", "wall_s") / med("direct", "wall_s")
    cpu_ratio = med("api", "server_cpu_s_per_gib") / max(
        med("direct", "server_cpu_s_per_gib"), 1e-9
    )
    ok_speed, ok_cpu = speedup >= TARGET_SPEEDUP, cpu_ratio >= TARGET_CPU_RATIO
    print_table(
        f"Push of a {total / MIB:,.0f} MiB adapter (median of {rounds})",
        ["path", "wall (s)", "MiB/s", "registry CPU s/GiB", "net of idle", "SeaweedFS CPU s/GiB"],
        [
            [
                kind,
                med(kind, "wall_s"),
                med(kind, "mib_s"),
                med(kind, "server_cpu_s_per_gib"),
                med(kind, "server_net_cpu_s_per_gib"),
                med(kind, "store_cpu_s_per_gib"),
            ]
            for kind in ("api", "direct")
        ],
    )
    checks = [
        {
            "name": "direct speed-up end to end",
            "value": round(speedup, 2),
            "target": f">= {TARGET_SPEEDUP}",
            "ok": ok_speed,
        },
        {
            "name": "registry CPU per GiB, api / direct",
            "value": round(cpu_ratio, 2),
            "target": f">= {TARGET_CPU_RATIO}",
            "ok": ok_cpu,
        },
    ]
    print_table(
        "Direct upload targets",
        ["figure", "value", "target", "met"],
        [[c["name"], c["value"], c["target"], mark(bool(c["ok"]))] for c in checks],
    )
    write_json(
        NAME,
        {"file_bytes": total, "rounds": rounds, "results": results, "checks": checks, "busy": busy},
    )
    return {"name": NAME, "checks": checks}


if __name__ == "__main__":
    main()
