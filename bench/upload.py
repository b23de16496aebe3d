"""Upload throughput vs raw sha256 speed, and the server's peak RSS during a 2 GiB upload.

1. Raw ``hashlib.sha256`` speed in-process over 1 MiB chunks (the ceiling: the server must hash
   every byte it receives).
2. A 2 GiB file (256 MiB with ``--quick``) is generated on disk once: an 8-byte length + JSON
   header describing one ``U8`` tensor that covers the rest (so the server's content sniffing
   accepts it), then pseudo-random bytes. Its digest is computed while it is written.
3. It is streamed with httpx (1 MiB chunks read from the file) through
   ``PUT /api/v1/uploads/{id}/files/adapter_model.safetensors`` to a real server subprocess
   (local backend, SQLite) while a thread samples the server's ``VmRSS`` from
   ``/proc/<pid>/status`` every 20 ms; ``VmHWM`` is read before and after.

Client and server share the machine's cores, as they would on a single-box deployment.
The file and the staged copy are removed afterwards.

    python -m bench.upload [--quick]

``--direct`` runs bench/upload_direct.py instead: a push through the API vs a direct upload
to S3 (presigned multipart), side by side.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from bench._common import (
    ROOT,
    RssSampler,
    Server,
    _wait_healthy,
    api_client,
    free_port,
    mark,
    migrate_and_bootstrap,
    parse_args,
    print_table,
    proc_status_kib,
    running,
    scratch_database,
    start_registry,
    wait_for_quiet,
    write_json,
)

NAME = "upload"
MIB = 1024**2
CHUNK = MIB
TARGET_RATIO = 0.80
TARGET_RSS_MIB = 150.0
TARGET_GROWTH_MIB = 100.0


def raw_sha256_mib_s(total_bytes: int, repeats: int = 3) -> list[float]:
    chunk = os.urandom(CHUNK)
    out = []
    for _ in range(repeats):
        h = hashlib.sha256()
        t0 = time.perf_counter()
        for _ in range(total_bytes // CHUNK):
            h.update(chunk)
        h.hexdigest()
        out.append(total_bytes / MIB / (time.perf_counter() - t0))
    return out


def write_payload(path: Path, total_bytes: int) -> str:
    """A valid single-tensor safetensors file of exactly ``total_bytes``; returns its digest."""
    header_raw = b""
    for _ in range(3):  # the header's length depends on the data length it declares
        data_len = total_bytes - 8 - len(header_raw)
        header = {"payload": {"dtype": "U8", "shape": [data_len], "data_offsets": [0, data_len]}}
        raw = json.dumps(header, separators=(",", ":")).encode()
        header_raw = raw + b" " * (-len(raw) % 8)
    data_len = total_bytes - 8 - len(header_raw)
    h = hashlib.sha256()
    block = os.urandom(CHUNK)
    with path.open("wb") as fh:
        head = struct.pack("<Q", len(header_raw)) + header_raw
        fh.write(head)
        h.update(head)
        remaining = data_len
        while remaining > 0:
            piece = block if remaining >= CHUNK else block[:remaining]
            fh.write(piece)
            h.update(piece)
            remaining -= len(piece)
    if path.stat().st_size != total_bytes:
        raise RuntimeError("payload size mismatch")
    return "sha256:" + h.hexdigest()


def start_sink(tmp: Path) -> Server:
    """``bench._sink:app`` under uvicorn: the HTTP transport + in-line hashing ceiling."""
    log = tmp / "sink.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench._sink:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--workers",
            "1",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    return Server(proc, url, log, _wait_healthy(proc, url, log, "/"))


def sink_uploads(tmp: Path, payload: Path, total: int, digest: str, runs: int) -> list[float]:
    rates = []
    with running(start_sink(tmp)) as sink, httpx.Client(base_url=sink.url, timeout=600) as c:
        for _ in range(runs):
            t0 = time.perf_counter()
            r = c.put("/sink", content=file_chunks(payload), headers={"Content-Length": str(total)})
            wall = time.perf_counter() - t0
            r.raise_for_status()
            if r.json()["digest"] != digest:
                raise RuntimeError("sink digest differs")
            rates.append(total / MIB / wall)
    return rates


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    rest = list(sys.argv[1:] if argv is None else argv)
    if "--direct" in rest:
        from bench import upload_direct

        return upload_direct.main([a for a in rest if a != "--direct"])
    args = parse_args(__doc__ or NAME, argv)
    wait_for_quiet()
    total = (256 if args.quick else 2048) * MIB
    runs = 2 if args.quick else 3

    sha = raw_sha256_mib_s(min(total, 1024 * MIB))
    sha_best = max(sha)
    print(f"  raw sha256 (1 MiB chunks): {', '.join(f'{x:.0f}' for x in sha)} MiB/s", flush=True)

    uploads: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp_s:
        tmp = Path(tmp_s)
        payload = tmp / "payload.safetensors"
        t0 = time.perf_counter()
        digest = write_payload(payload, total)
        print(
            f"  wrote {total / MIB:,.0f} MiB payload in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        sink = sink_uploads(tmp, payload, total, digest, runs)
        print(
            f"  bare uvicorn sink (drain + sha256, no disk): "
            f"{', '.join(f'{x:.0f}' for x in sink)} MiB/s",
            flush=True,
        )
        with scratch_database("sqlite", tmp, "upload") as url:
            token = migrate_and_bootstrap(url)
            with (
                running(start_registry(url, tmp, "upload")) as server,
                api_client(server, token, timeout=600) as client,
            ):
                # warm the routes (auth, upload session, a small PUT) before measuring idle RSS
                warm = client.post("/api/v1/uploads", json={"purpose": "adapter"}).json()["id"]
                small = b'{"r": 4}'
                client.put(
                    f"/api/v1/uploads/{warm}/files/adapter_config.json",
                    content=small,
                    headers={"X-Content-Digest": "sha256:" + hashlib.sha256(small).hexdigest()},
                )
                time.sleep(1.0)
                idle = proc_status_kib(server.pid)
                print(
                    f"  server idle: VmRSS {idle['VmRSS'] / 1024:.1f} MiB, "
                    f"VmHWM {idle['VmHWM'] / 1024:.1f} MiB",
                    flush=True,
                )
                for i in range(runs):
                    r = client.post("/api/v1/uploads", json={"purpose": "adapter"})
                    r.raise_for_status()
                    upload_id = r.json()["id"]
                    with RssSampler(server.pid) as sampler:
                        t0 = time.perf_counter()
                        r = client.put(
                            f"/api/v1/uploads/{upload_id}/files/adapter_model.safetensors",
                            content=file_chunks(payload),
                            headers={"X-Content-Digest": digest, "Content-Length": str(total)},
                        )
                        wall = time.perf_counter() - t0
                    if r.status_code != 201:
                        raise RuntimeError(f"upload failed: {r.status_code} {r.text[:500]}")
                    if r.json()["digest"] != digest:
                        raise RuntimeError("server digest differs from the client's")
                    after = proc_status_kib(server.pid)
                    rate = total / MIB / wall
                    uploads.append(
                        {
                            "run": i + 1,
                            "seconds": round(wall, 3),
                            "mib_s": round(rate, 1),
                            "ratio_to_sha256": round(rate / sha_best, 3),
                            "peak_rss_mib": round(sampler.peak_kib / 1024, 1),
                            "hwm_after_mib": round(after["VmHWM"] / 1024, 1),
                            "rss_after_mib": round(after["VmRSS"] / 1024, 1),
                            "rss_samples": sampler.samples,
                        }
                    )
                    print(
                        f"  run {i + 1}: {rate:.0f} MiB/s ({wall:.2f} s), peak VmRSS "
                        f"{sampler.peak_kib / 1024:.1f} MiB, VmHWM "
                        f"{after['VmHWM'] / 1024:.1f} MiB",
                        flush=True,
                    )
                    # drop the staged copy (keeps the disk footprint at one payload + one copy)
                    for staged in (tmp / "upload-artifacts").rglob("*"):
                        if staged.is_file() and staged.stat().st_size >= total:
                            staged.unlink()
        payload.unlink(missing_ok=True)

    idle_mib = idle["VmRSS"] / 1024
    med_rate = statistics.median(u["mib_s"] for u in uploads)
    peak = max(u["peak_rss_mib"] for u in uploads)
    hwm = max(u["hwm_after_mib"] for u in uploads)
    ratio = med_rate / sha_best
    ok_ratio = ratio >= TARGET_RATIO
    ok_rss = hwm < TARGET_RSS_MIB
    ok_growth = hwm - idle_mib < TARGET_GROWTH_MIB
    print_table(
        f"Upload of a {total / MIB:,.0f} MiB file (PUT, streaming), {runs} runs",
        ["run", "seconds", "MiB/s", "vs raw sha256", "peak VmRSS MiB", "VmHWM after MiB"],
        [
            [
                u["run"],
                u["seconds"],
                u["mib_s"],
                f"{u['ratio_to_sha256']:.0%}",
                u["peak_rss_mib"],
                u["hwm_after_mib"],
            ]
            for u in uploads
        ],
    )
    print_table(
        "Upload summary",
        ["figure", "value", "target", "met"],
        [
            ["raw sha256, best of 3 (MiB/s)", sha_best, "", ""],
            [
                "bare uvicorn sink: drain + sha256, no disk, median (MiB/s)",
                statistics.median(sink),
                "",
                "",
            ],
            ["upload, median (MiB/s)", med_rate, "", ""],
            ["upload / raw sha256", f"{ratio:.0%}", f">= {TARGET_RATIO:.0%}", mark(ok_ratio)],
            ["server idle VmRSS (MiB)", idle_mib, "", ""],
            ["server peak VmRSS during upload (MiB)", peak, "", ""],
            ["server VmHWM after uploads (MiB)", hwm, f"< {TARGET_RSS_MIB:g}", mark(ok_rss)],
            [
                "growth: VmHWM - idle VmRSS (MiB)",
                hwm - idle_mib,
                f"< ~{TARGET_GROWTH_MIB:g}",
                mark(ok_growth),
            ],
        ],
    )
    checks = [
        {
            "name": "upload / raw sha256",
            "value": round(ratio, 3),
            "target": f">= {TARGET_RATIO}",
            "ok": ok_ratio,
        },
        {
            "name": "server VmHWM during 2 GiB upload (MiB)",
            "value": hwm,
            "target": f"< {TARGET_RSS_MIB}",
            "ok": ok_rss,
        },
        {
            "name": "server RSS growth (MiB)",
            "value": round(hwm - idle_mib, 1),
            "target": f"< {TARGET_GROWTH_MIB}",
            "ok": ok_growth,
        },
    ]
    write_json(
        NAME,
        {
            "file_bytes": total,
            "chunk_bytes": CHUNK,
            "raw_sha256_mib_s": [round(x, 1) for x in sha],
            "bare_sink_mib_s": [round(x, 1) for x in sink],
            "idle_rss_mib": round(idle_mib, 1),
            "idle_hwm_mib": round(idle["VmHWM"] / 1024, 1),
            "uploads": uploads,
            "checks": checks,
        },
    )
    return {"name": NAME, "checks": checks}


if __name__ == "__main__":
    main()
