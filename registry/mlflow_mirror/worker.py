"""The MLflow mirror worker: a daemon thread of the server process, a subscriber of the
outbox (the audit log), never part of the transaction that moved the traffic.

Each round: one short write transaction plans and leases the due bindings
(:mod:`registry.mlflow_mirror.rounds`), holding the round's lock (the webhook worker's helper:
a PostgreSQL advisory lock, SQLite's write lock), so one replica acts per round; the MLflow
calls are then made holding no transaction, with bounded timeouts; each outcome is written in
a transaction of its own. A failure (MLflow down, the database away) is kept on the binding and
retried next round; it never ends the loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from registry.db.session import Sessions, unit_of_work
from registry.events.worker import try_round_lock
from registry.mlflow_mirror import rounds
from registry.mlflow_mirror.rest import MirrorRest
from registry.mlflow_mirror.sync import Outcome, Plan, assert_state
from registry.mlflow_settings import MlflowSettings

log = logging.getLogger("registry.mlflow_mirror")

ADVISORY_LOCK_KEY = 0x5EED_A11A  # "the MLflow mirror round", any stable 64-bit value


class MirrorWorker:
    def __init__(
        self,
        sessions: Sessions,
        settings: MlflowSettings,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessions = sessions
        self.settings = settings
        self._clock = clock
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mlflow-mirror", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.read_timeout_s + 5)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.tick()
            except Exception:  # a failing round (database down) must not end the loop
                log.exception("mlflow mirror round failed")
            self._stopping.wait(self.settings.mirror_poll_s)

    def claim(self) -> list[Plan]:
        """Plan and lease the due bindings (nothing when another replica holds the lock)."""
        with unit_of_work(self._sessions.write) as session:
            if not try_round_lock(session, ADVISORY_LOCK_KEY):
                return []
            return rounds.plan_round(session, now=self._clock(), settings=self.settings)

    def assert_one(self, plan: Plan) -> Outcome:
        """Put one plan into MLflow and record the outcome."""
        with MirrorRest(plan.server, self.settings) as rest:
            outcome = assert_state(rest, plan)
        if outcome.error is not None:
            log.warning("mlflow mirror of %s failed: %s", plan.deployment, outcome.error)
        with unit_of_work(self._sessions.write) as session:
            rounds.record(session, plan, outcome, now=self._clock())
        return outcome

    def tick(self) -> dict[str, Outcome]:
        """One round; the outcome per deployment asserted."""
        done: dict[str, Outcome] = {}
        for plan in self.claim():
            if self._stopping.is_set():
                break  # the lease runs out and another round takes it
            try:
                done[plan.deployment] = self.assert_one(plan)
            except Exception:
                log.exception("mlflow mirror of %s failed to record", plan.deployment)
        return done
