"""Queries of the ``jobs`` table (no state changes: those are :mod:`registry.jobs.states`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update

from registry.db.keyset import newest_first_after
from registry.db.rows import Rows
from registry.jobs.models import Job, JobState


class JobRepository(Rows[Job]):
    model = Job

    def list_page(
        self,
        *,
        created_by: uuid.UUID | None,
        before: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Job]:
        """Jobs newest first (only ``created_by``'s when given), after the cursor ``before``."""
        stmt = select(Job).order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
        if created_by is not None:
            stmt = stmt.where(Job.created_by_id == created_by)
        if before is not None:
            stmt = stmt.where(newest_first_after(Job.created_at, Job.id, before))
        return list(self.session.scalars(stmt))

    def next_queued(self) -> uuid.UUID | None:
        """The oldest queued job. On PostgreSQL its row is locked and rows other workers hold
        are skipped (``FOR UPDATE SKIP LOCKED``); on SQLite the write transaction already holds
        the database's write lock. Either way the claim itself is a compare-and-set."""
        stmt = (
            select(Job.id)
            .where(Job.state == JobState.queued)
            .order_by(Job.created_at, Job.id)
            .limit(1)
        )
        if self.session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        return self.session.scalars(stmt).first()

    def stale_running(self, *, older_than: datetime, limit: int) -> list[Job]:
        """Running jobs whose heartbeat is older than ``older_than`` (locked, skipping rows
        another worker holds on PostgreSQL)."""
        stmt = (
            select(Job)
            .where(Job.state == JobState.running, Job.heartbeat_at < older_than)
            .order_by(Job.heartbeat_at)
            .limit(limit)
        )
        if self.session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        return list(self.session.scalars(stmt))

    def beat(self, job_id: uuid.UUID, *, at: datetime, done: int | None, total: int | None) -> bool:
        """Refresh a running job's heartbeat (and its progress when given); returns whether its
        worker should stop: it was asked to cancel, or is no longer running (found abandoned
        and queued again, or ended, meanwhile). Does nothing to a job that is not running."""
        values: dict[str, object] = {"heartbeat_at": at}
        if done is not None and total is not None:
            values |= {"progress_done": max(0, done), "progress_total": max(0, total)}
        self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == JobState.running)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        row = self.session.execute(
            select(Job.state, Job.cancel_requested).where(Job.id == job_id)
        ).one_or_none()
        return row is None or row.state != JobState.running or bool(row.cancel_requested)
