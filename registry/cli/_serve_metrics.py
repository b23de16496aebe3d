"""``serve --workers N``'s metrics: the snapshot directory its workers share, and the token-free
metrics listener in the parent process (registry.metrics_workers)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import typer

from registry.api.metrics_port import MetricsListener
from registry.metrics_workers import SNAPSHOT_DIR_ENV, render_merged
from registry.settings import Settings


@contextmanager
def worker_metrics(settings: Settings, workers: int) -> Iterator[None]:
    """With several workers: a fresh snapshot directory named to them in the environment they
    inherit, and the REGISTRY_METRICS__PORT listener here; both gone when serving ends. One
    worker serves in this process and keeps its metrics to itself."""
    if workers == 1:
        yield
        return
    directory = Path(tempfile.mkdtemp(prefix="adapter-registry-metrics-"))
    listener = None
    try:
        if settings.metrics.port is not None:
            try:
                listener = MetricsListener(
                    partial(render_merged, directory), settings.metrics.host, settings.metrics.port
                )
            except OSError as exc:
                raise typer.BadParameter(
                    f"cannot listen on {settings.metrics.host}:{settings.metrics.port} ({exc})",
                    param_hint="REGISTRY_METRICS__HOST/REGISTRY_METRICS__PORT",
                ) from exc
            listener.start()
        os.environ[SNAPSHOT_DIR_ENV] = str(directory)
        try:
            yield
        finally:
            os.environ.pop(SNAPSHOT_DIR_ENV, None)
    finally:
        if listener is not None:
            listener.stop()
        shutil.rmtree(directory, ignore_errors=True)
