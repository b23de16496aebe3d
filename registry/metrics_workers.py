"""Metrics across ``serve --workers N``: one set of figures whichever process is scraped.

``serve`` makes a directory for the run and names it to its workers in ``SNAPSHOT_DIR_ENV``.
Each worker writes a snapshot of every family its metrics registry collects there, every
``INTERVAL_S`` seconds and when it stops (one JSON file per process, replaced atomically). A
scrape (a worker's authenticated ``GET /metrics``, or the ``serve`` parent's token-free listener
when ``REGISTRY_METRICS__PORT`` is set) merges the snapshots; a worker writes its own first, so
its requests so far are counted:

- counters, histograms and summaries are summed over the workers, dead ones included, so a total
  never goes down when uvicorn replaces a worker; a ``_created`` sample keeps the earliest;
- gauges (connection pool, process memory, open files, ...) keep one series per live worker,
  labelled ``worker`` with its pid; a dead worker's gauges are dropped.

Only the files are read, never a process's live figures, so two scrapes answered by different
workers never see a counter go back: each file only grows. Other workers' figures are at most
``INTERVAL_S`` old.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

SNAPSHOT_DIR_ENV = "ADAPTER_REGISTRY_METRICS_DIR"  # set by `serve`, not a setting
INTERVAL_S = 2.0
_SUMMED = frozenset({"counter", "histogram", "summary"})
_WORKER = "worker"


def snapshot_dir_from_env() -> Path | None:
    """The directory ``serve`` made for its workers' snapshots; None for a single process."""
    value = os.environ.get(SNAPSHOT_DIR_ENV)
    return Path(value) if value else None


def write_snapshot(registry: CollectorRegistry, directory: Path, pid: int | None = None) -> None:
    """Write ``registry``'s families as this process's snapshot (atomic: a reader sees the
    previous file or this one, never part of it)."""
    pid = os.getpid() if pid is None else pid
    families = [
        {
            "name": family.name,
            "type": family.type,
            "help": family.documentation,
            "unit": family.unit,
            "samples": [[s.name, s.labels, s.value] for s in family.samples],
        }
        for family in registry.collect()
    ]
    fd, scratch = tempfile.mkstemp(dir=directory, prefix=f".{pid}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump({"pid": pid, "families": families}, out)
        os.replace(scratch, directory / f"{pid}.json")
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, someone else's
        return True
    return True


class MergedSnapshots(Collector):
    """The families of every snapshot in a directory, merged as the module says."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
        for path in sorted(self.directory.glob("*.json")):
            try:
                snapshot = json.loads(path.read_text())
            except (OSError, ValueError):  # removed meanwhile
                continue
            pid = int(snapshot["pid"])
            alive = pid == os.getpid() or _alive(pid)
            for family in snapshot["families"]:
                summed = family["type"] in _SUMMED
                if not summed and not alive:
                    continue
                name = family["name"]
                if name not in families:
                    families[name] = Metric(name, family["help"], family["type"], family["unit"])
                    values[name] = {}
                series = values[name]
                for sample_name, labels, value in family["samples"]:
                    if not summed:
                        labels = {**labels, _WORKER: str(pid)}
                    key = (sample_name, tuple(sorted(labels.items())))
                    if key not in series:
                        series[key] = value
                    elif sample_name.endswith("_created"):
                        series[key] = min(series[key], value)
                    else:
                        series[key] += value
        for name, family in families.items():
            for (sample_name, labels), value in values[name].items():
                family.add_sample(sample_name, dict(labels), value)
            yield family


def render_merged(directory: Path) -> bytes:
    """Every worker's snapshot, merged, in the text exposition format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MergedSnapshots(directory))
    return generate_latest(registry)


class SnapshotWriter:
    """Writes this worker's snapshot every ``interval_s`` seconds on a thread, and once more
    when stopped (a worker that exits leaves its final counts behind)."""

    def __init__(
        self, registry: CollectorRegistry, directory: Path, interval_s: float = INTERVAL_S
    ) -> None:
        self.registry = registry
        self.directory = directory
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-snapshots", daemon=True)

    def write(self) -> None:
        try:
            write_snapshot(self.registry, self.directory)
        except OSError as exc:  # the directory went away (parent stopping) or a full disk
            log.warning("metrics snapshot not written to %s: %s", self.directory, exc)

    def start(self) -> None:
        self.write()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.write()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.write()
