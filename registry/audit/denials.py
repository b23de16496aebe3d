"""Rate limit on ``authz.denied`` audit rows, per principal (issue 11, point 12).

A refused mutating call costs the caller nothing but a 403, while its ``authz.denied`` event
costs a write transaction and a row that can never be deleted: unbounded, one principal's token
could fill the audit table (and, on SQLite, queue every writer behind its denials). So each
server process writes at most ``limit`` denied events per principal per window of ``window_s``
seconds. The first denial past the limit writes one ``authz.denied.suppressed`` summary event
for the window instead (``after``: the window's start and end, the limit, the action refused);
the rest are only counted (``registry_audit_denials_suppressed_total`` on ``/metrics``) and take
no database transaction at all. The refusal itself is unchanged: every call still answers its
403.

Windows are fixed, per principal, starting at that principal's first denial; the bound holds per
process (N replicas write at most N times as many rows). The clock is injectable for tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from registry.audit.service import AuditEntry, append
from registry.db.session import Sessions, unit_of_work

SUPPRESSED_ACTION = "authz.denied.suppressed"
# Forget principals whose window ended once this many are tracked (a bound on memory, not on
# rows: a forgotten principal simply starts a fresh window).
_MAX_TRACKED = 10_000


@dataclass
class _Window:
    start: float  # clock value
    started_at: datetime  # wall time, for the summary event
    written: int = 0
    suppressed: int = 0


class DenialLimiter:
    """Decides which denied events reach the audit log (thread-safe; one per process)."""

    def __init__(
        self,
        *,
        limit: int,
        window_s: float,
        on_suppressed: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self._on_suppressed = on_suppressed
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}

    def admit(self, entry: AuditEntry) -> AuditEntry | None:
        """The event to write for this denial: ``entry`` itself while the principal is under
        its limit, the window's summary event for the first denial past it, else None."""
        key = str(entry.actor_id or entry.actor or "")
        now = self._clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None or now - window.start >= self.window_s:
                if len(self._windows) >= _MAX_TRACKED:
                    self._forget_ended(now)
                window = _Window(start=now, started_at=datetime.now(UTC))
                self._windows[key] = window
            if window.written < self.limit:
                window.written += 1
                return entry
            window.suppressed += 1
            first = window.suppressed == 1
        self._on_suppressed()
        if not first:
            return None
        return AuditEntry(
            action=SUPPRESSED_ACTION,
            resource=entry.resource,
            actor=entry.actor,
            actor_id=entry.actor_id,
            decision=entry.decision,
            after={
                "limit": self.limit,
                "window_start": window.started_at,
                "window_end": window.started_at + timedelta(seconds=self.window_s),
                "note": "further denials of this principal in this window are counted in "
                "registry_audit_denials_suppressed_total, not written",
            },
            request_id=entry.request_id,
        )

    def record(self, sessions: Sessions, entry: AuditEntry) -> None:
        """Append the denied event (or its window's summary) in a write transaction of its
        own, or nothing at all once the principal is past its limit."""
        admitted = self.admit(entry)
        if admitted is None:
            return
        with unit_of_work(sessions.write) as session:
            append(session, admitted)

    def _forget_ended(self, now: float) -> None:
        ended = [k for k, w in self._windows.items() if now - w.start >= self.window_s]
        for k in ended:
            del self._windows[k]
        if len(self._windows) >= _MAX_TRACKED:  # all current: drop the oldest half
            for k in sorted(self._windows, key=lambda k: self._windows[k].start)[
                : _MAX_TRACKED // 2
            ]:
                del self._windows[k]
