"""The job worker: threads of the server process that claim queued jobs and run them.

One job at a time per thread (``REGISTRY_JOBS__CONCURRENCY`` threads): claim the oldest
queued job (:func:`registry.jobs.lifecycle.claim_next`), copy its inputs out of the artifact
store (verified), run the maths with a progress callback, register the result as the job's
creator, and end the job. The progress callback writes progress at most once a second and
raises when the job was cancelled (it ends ``cancelled``; the maths leaves nothing behind) or
the server is stopping (it is queued again for another worker). A heartbeat thread keeps a
long-running job from looking abandoned; jobs whose heartbeat stopped (a crashed server) are
queued again or failed (:func:`registry.jobs.lifecycle.requeue_stale`).

Tests drive it by hand: :func:`run_one` claims and runs one job, :func:`execute` runs a job
claimed with :func:`claim`.
"""

from __future__ import annotations

import logging
import math
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from registry.db.session import unit_of_work
from registry.errors import JobStateConflict, RegistryError
from registry.jobs import lifecycle
from registry.jobs.env import Cancelled, Creator, Interrupted, WorkerEnv
from registry.jobs.models import JobState
from registry.jobs.operations import run_maths

log = logging.getLogger("registry.jobs")

#: Progress is written at most this often (the last report always).
PROGRESS_INTERVAL_S = 1.0


def _now() -> datetime:
    return datetime.now(UTC)


class Pulse:
    """A running job's progress callback and heartbeat (a thread of its own while it runs)."""

    def __init__(self, env: WorkerEnv, job_id: uuid.UUID, stopping: threading.Event) -> None:
        self._env, self._job_id, self._stopping = env, job_id, stopping
        self._last = -math.inf
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"job-{job_id}", daemon=True)

    def __enter__(self) -> Pulse:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        interval = self._env.settings.jobs.stale_after_s / 4
        while not self._done.wait(interval):
            try:
                with unit_of_work(self._env.sessions.write) as session:
                    lifecycle.beat(session, self._job_id, now=_now(), done=None, total=None)
            except Exception:  # a missed beat is not fatal; the next one may get through
                log.warning("job %s: heartbeat failed", self._job_id, exc_info=True)

    def progress(self, done: int, total: int) -> None:
        """The maths' ``progress(done, total)``: raises ``Cancelled`` / ``Interrupted``."""
        if self._stopping.is_set():
            raise Interrupted()
        now = time.monotonic()
        if now - self._last < PROGRESS_INTERVAL_S and done < total:
            return
        self._last = now
        with unit_of_work(self._env.sessions.write) as session:
            cancel = lifecycle.beat(session, self._job_id, now=_now(), done=done, total=total)
        if cancel:
            raise Cancelled()


def claim(env: WorkerEnv) -> lifecycle.Claimed | None:
    """Claim the oldest queued job (now ``running``), or None."""
    with unit_of_work(env.sessions.write) as session:
        return lifecycle.claim_next(session, now=_now())


def _end(env: WorkerEnv, job_id: uuid.UUID, to: JobState, **outcome: Any) -> None:
    try:
        with unit_of_work(env.sessions.write) as session:
            lifecycle.finish(session, job_id, to, now=_now(), **outcome)
    except JobStateConflict:  # found abandoned and queued again meanwhile: another run owns it
        log.warning("job %s: no longer running; its outcome (%s) is dropped", job_id, to)


def _release(env: WorkerEnv, job_id: uuid.UUID) -> None:
    with unit_of_work(env.sessions.write) as session:
        lifecycle.release(session, job_id, now=_now())


def execute(
    env: WorkerEnv, claimed: lifecycle.Claimed, stopping: threading.Event | None = None
) -> None:
    """Run a claimed job to its end: ``succeeded`` (the result registered), ``cancelled``,
    ``failed`` (the error's code, detail and context), or queued again (stopping)."""
    stopping = stopping or threading.Event()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="registry-job-") as tmp,
            Pulse(env, claimed.id, stopping) as pulse,
        ):
            run_maths(env, claimed, Creator(env, claimed), Path(tmp), pulse.progress)
    except Cancelled:
        _end(env, claimed.id, JobState.cancelled)
    except Interrupted:
        _release(env, claimed.id)
    except Exception as exc:
        if not isinstance(exc, RegistryError):
            log.exception("job %s failed", claimed.id)
        _end(env, claimed.id, JobState.failed, error=lifecycle.error_body(exc))


def run_one(env: WorkerEnv, stopping: threading.Event | None = None) -> uuid.UUID | None:
    """Claim one queued job and run it to its end; its id, or None when none was queued."""
    claimed = claim(env)
    if claimed is None:
        return None
    execute(env, claimed, stopping)
    return claimed.id


def sweep(env: WorkerEnv) -> list[tuple[uuid.UUID, str]]:
    """Queue again (or fail) the running jobs whose heartbeat stopped."""
    jobs = env.settings.jobs
    with unit_of_work(env.sessions.write) as session:
        return lifecycle.requeue_stale(
            session, now=_now(), stale_after_s=jobs.stale_after_s, max_attempts=jobs.max_attempts
        )


class JobWorker:
    """``concurrency`` daemon threads running :func:`run_one` in a loop (started with the
    server when ``REGISTRY_JOBS__ENABLED``); ``stop`` interrupts running jobs (re-queued)."""

    def __init__(self, env: WorkerEnv) -> None:
        self._env = env
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for n in range(self._env.settings.jobs.concurrency):
            thread = threading.Thread(target=self._run, args=(n,), name=f"jobs-{n}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _run(self, n: int) -> None:
        poll = self._env.settings.jobs.poll_s
        while not self._stopping.is_set():
            try:
                if n == 0:
                    sweep(self._env)
                ran = run_one(self._env, self._stopping)
            except Exception:  # a failing round (database down) must not end the loop
                log.exception("job worker round failed")
                ran = None
            if ran is None:
                self._stopping.wait(poll)
