"""Shared plumbing: databases, real server subprocesses (ours and MLflow's), stats, output."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "bench" / "out"
FIXTURES = ROOT.parent / "shared" / "fixtures" / "peft"
ADAPTER_DIR = FIXTURES / "adapters" / "gpt2-lora-r4-cattn"
BASE_DIR = FIXTURES / "bases" / "tiny-gpt2"
BASE_NAME = "tiny-gpt2"
BASE_REVISION = "main"

PG_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
START_TIMEOUT_S = 120.0


# --------------------------------------------------------------------------- command line


def parse_args(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument(
        "--dialects",
        default="sqlite,postgresql",
        help="comma-separated subset of sqlite,postgresql (where a benchmark uses a database)",
    )
    return parser.parse_args(argv)


def dialects_of(args: argparse.Namespace) -> list[str]:
    wanted = [d.strip() for d in str(args.dialects).split(",") if d.strip()]
    out = []
    for d in wanted:
        if d not in ("sqlite", "postgresql"):
            raise SystemExit(f"unknown dialect {d!r}")
        if d == "postgresql" and not postgres_available():
            print("PostgreSQL is not reachable: skipping its cases", file=sys.stderr)
            continue
        out.append(d)
    return out


# --------------------------------------------------------------------------- databases


def _pg_url(database: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database


def _pg_connect(autocommit: bool = True) -> Any:
    import psycopg

    dsn = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=5)


def postgres_available() -> bool:
    try:
        with _pg_connect() as conn:
            conn.execute("SELECT 1")
        return True
    except Exception:
        return False


def postgres_version() -> str | None:
    try:
        with _pg_connect() as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return str(row[0]) if row else None
    except Exception:
        return None


@contextlib.contextmanager
def scratch_database(dialect: str, tmp: Path, label: str) -> Iterator[str]:
    """A fresh, empty database; yields its SQLAlchemy URL and drops it afterwards."""
    if dialect == "sqlite":
        path = tmp / f"{label}.db"
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    name = f"bench_{label}_{os.getpid()}_{uuid.uuid4().hex[:6]}".lower()
    with _pg_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        with _pg_connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def analyze(url: str) -> None:
    """ANALYZE the whole database (autovacuum is off on the bench machine)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
    finally:
        engine.dispose()


def migrate_and_bootstrap(url: str) -> str:
    """Migrate ``url`` to head and mint the first admin token (returned)."""
    from registry.db import migrate
    from registry.db.engine import make_engine
    from registry.db.session import Sessions, unit_of_work
    from registry.principals.service import bootstrap_admin
    from registry.settings import DatabaseSettings

    migrate.upgrade(url)
    engine = make_engine(DatabaseSettings(url=url))
    try:
        with unit_of_work(Sessions(engine).write) as session:
            return bootstrap_admin(session, name="bench-admin")
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    started_in_s: float

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path, path: str) -> float:
    t0 = time.monotonic()
    deadline = t0 + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{url}{path}", timeout=1).status_code == 200:
                return time.monotonic() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    proc.wait(timeout=15)
    raise RuntimeError(f"server did not start: {log.read_text(errors='replace')[-3000:]}")


def registry_env(database_url: str, artifacts: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env.update(
        REGISTRY_DATABASE__URL=database_url,
        REGISTRY_STORAGE__BACKEND="local",
        REGISTRY_STORAGE__ROOT=str(artifacts),
    )
    return env


def start_registry(
    database_url: str, tmp: Path, label: str, *, workers: int | None = 1, **settings: str
) -> Server:
    """``adapter-registry serve`` (``workers`` processes, its default of one per core when None:
    uvicorn with the registry's guarded protocol, keep-alive and concurrency settings, as in
    production) on a free loopback port; extra ``REGISTRY_*`` settings in ``settings``."""
    artifacts = tmp / f"{label}-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    log = tmp / f"{label}-registry.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = registry_env(database_url, artifacts)
    env.update(settings)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "registry",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            *(["--workers", str(workers)] if workers else []),
        ],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    return Server(proc, url, log, _wait_healthy(proc, url, log, "/healthz"))


def mlflow_backend_uri(database_url: str) -> str:
    """Our SQLAlchemy URL → MLflow's backend store URI (same driver: psycopg 3 / sqlite3)."""
    return database_url


def start_mlflow(database_url: str, tmp: Path, label: str, *, workers: int | None = 1) -> Server:
    """``mlflow server`` (``workers`` processes, its own default when None; no artifact
    serving, artifacts to a tmp dir)."""
    artifacts = tmp / f"{label}-mlartifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    log = tmp / f"{label}-mlflow.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    env = dict(os.environ)
    env.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    proc = subprocess.Popen(
        [
            str(mlflow_bin),
            "server",
            "--backend-store-uri",
            mlflow_backend_uri(database_url),
            "--default-artifact-root",
            artifacts.as_uri(),
            "--no-serve-artifacts",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *(["--workers", str(workers)] if workers else []),
        ],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=tmp,
    )
    return Server(proc, url, log, _wait_healthy(proc, url, log, "/health"))


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server
    finally:
        server.stop()


def mlflow_available() -> bool:
    return Path(sys.executable).with_name("mlflow").exists()


def api_client(server: Server, token: str, timeout: float = 60.0) -> httpx.Client:
    return httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
    )


def setup_catalog(client: httpx.Client, namespace: str = "bench") -> str:
    """Create a namespace and register the tiny-gpt2 base (headers only); returns ``NAME@REV``."""
    from registry.validation.manifest import read_base_dir

    r = client.post("/api/v1/namespaces", json={"name": namespace})
    r.raise_for_status()
    manifest = read_base_dir(BASE_DIR).to_json()
    r = client.post(
        "/api/v1/base-models",
        json={
            "name": BASE_NAME,
            "revision": BASE_REVISION,
            "config": manifest["config"],
            "tensors": manifest["tensors"],
        },
    )
    if r.status_code != 201:
        raise RuntimeError(f"base registration failed: {r.status_code} {r.text[:500]}")
    return f"{BASE_NAME}@{BASE_REVISION}"


# --------------------------------------------------------------------------- process memory


def proc_status_kib(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (KiB) of a process from ``/proc/<pid>/status``."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


@dataclass
class RssSampler:
    """Samples a process's VmRSS every ``interval_s`` on a thread until stopped."""

    pid: int
    interval_s: float = 0.02
    peak_kib: int = 0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = proc_status_kib(self.pid).get("VmRSS", 0)
            except OSError:
                return
            self.peak_kib = max(self.peak_kib, rss)
            self.samples += 1
            self._stop.wait(self.interval_s)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


# --------------------------------------------------------------------------- machine load


_LOAD: dict[str, float] = {}


def cpu_busy_pct(window_s: float = 2.0) -> float:
    """Share of all CPUs busy over ``window_s`` (from ``/proc/stat``), in percent."""

    def snap() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields), idle

    total0, idle0 = snap()
    time.sleep(window_s)
    total1, idle1 = snap()
    dt = total1 - total0
    return 100.0 * (1 - (idle1 - idle0) / dt) if dt > 0 else 0.0


def wait_for_quiet(max_wait_s: float = 600.0, busy_below_pct: float = 15.0) -> float:
    """Wait (bounded) until the machine is idle, since other work on the 2 cores skews every
    figure; returns the last busy share measured (reported in the JSON)."""
    deadline = time.monotonic() + max_wait_s
    busy = cpu_busy_pct()
    warned = False
    while busy >= busy_below_pct and time.monotonic() < deadline:
        if not warned:
            print(
                f"  machine busy ({busy:.0f} % CPU in use by other work): waiting up to "
                f"{max_wait_s:.0f} s for it to quieten",
                flush=True,
            )
            warned = True
        time.sleep(5)
        busy = cpu_busy_pct()
    _LOAD["cpu_busy_pct_before"] = round(busy, 1)
    if busy >= busy_below_pct:
        print(f"  WARNING: machine still busy ({busy:.0f} % CPU): figures are skewed", flush=True)
    return round(busy, 1)


# --------------------------------------------------------------------------- stats & output


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(max(ms), 3) if ms else math.nan,
    }


def mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    print(f"\n{title}")
    line = "  ".join("-" * w for w in widths)
    print("  ".join(h.ljust(w) for h, w in zip(cells[0], widths, strict=True)))
    print(line)
    for row in cells[1:]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    sys.stdout.flush()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "-" if value is None else str(value)


def cpu_reference_ms() -> float:
    """A fixed pure-Python workload (a 2,000,000-step loop), best of three, in ms: how fast this
    machine runs Python right now. Shared VMs vary from day to day (2-3x seen on the same
    'AMD EPYC' 2-vCPU machine), so absolute figures are only comparable at a similar value."""
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        total = 0
        for i in range(2_000_000):
            total += i
        best = min(best, time.perf_counter() - t0)
    return round(best * 1000, 1)


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kib = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(mem_kib / 1024**2, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres_version(),
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "cpu_reference_ms": cpu_reference_ms(),
    }


def write_json(name: str, payload: dict[str, Any]) -> Path:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{name}.json"
    doc = {
        "benchmark": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "load": dict(_LOAD),
        **payload,
    }
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    ref = doc["machine"]["cpu_reference_ms"]
    print(f"\nmachine: {ref} ms for the reference loop (bench._common.cpu_reference_ms)")
    print(f"wrote {path.relative_to(ROOT)}")
    return path


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result
