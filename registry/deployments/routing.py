"""Serving-path reads from memory: routing tables and resolve answers per deployment.

Each process keeps, per deployment, the current revision's routing table and both arms'
resolve answers as ready-made JSON bytes, so a resolve in steady state touches no database: it
hashes the key (``registry.canary.hashing``) and returns the cached bytes of its arm. A poller
thread reads the one-row ``routing_epoch`` counter (bumped with every revision) every
``poll_s`` and drops the cache when it moved, so a change is visible on every replica within
about ``poll_s`` plus one load. On PostgreSQL the thread also LISTENs on ``registry_routing``
(every revision NOTIFYs it on commit) and reads the counter as soon as a notification arrives:
changes show within milliseconds, and polling stays as the fallback when the listening
connection is down. Presigned URLs (S3) are refreshed before they expire.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.catalog.models import (
    Adapter,
    AdapterVersion,
    BaseModel,
    BaseModelVersion,
    Namespace,
    VersionFile,
)
from registry.catalog.views import serving_name
from registry.db.conninfo import psycopg_params
from registry.db.session import Sessions, unit_of_work
from registry.deployments.models import (
    ROUTING_CHANNEL,
    Deployment,
    DeploymentRevision,
    RoutingEpoch,
)
from registry.storage.base import ArtifactStore

log = logging.getLogger("registry.routing")

LISTEN_RETRY_S = 30.0  # after a failed LISTEN connection, poll only this long before retrying


@dataclass(frozen=True, slots=True)
class RouteTable:
    deployment: str
    deployment_id: uuid.UUID
    namespace: str
    revision: int
    salt: str
    share_bp: int
    etag: str
    table: bytes  # the routing-table document
    stable: bytes | None  # the resolve answer of each arm
    candidate: bytes | None
    expires_at: float  # monotonic time after which presigned URLs must be refreshed


class RoutingCache:
    def __init__(
        self,
        sessions: Sessions,
        store: ArtifactStore,
        *,
        presign_ttl_s: int,
        poll_s: float = 0.5,
        listen: bool = True,
    ) -> None:
        self._sessions = sessions
        engine = sessions.engine
        # Built by the dialect, so a multi-host URL (failover) reaches libpq as it reaches the pool.
        self._listen_params: dict[str, Any] | None = (
            psycopg_params(engine, connect_timeout_s=5)
            if listen and engine.dialect.name == "postgresql"
            else None
        )
        self._store = store
        self._presign_ttl_s = presign_ttl_s
        self._poll_s = poll_s
        self._tables: dict[str, RouteTable] = {}
        self._epoch: int | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.loads = 0  # DB loads so far (tests check the steady state makes none)
        self.notifications = 0  # NOTIFYs received (PostgreSQL)
        # Called on every invalidation: caches keyed by callers, not deployments, that a change
        # of access (a disabled principal, a role or membership taken) must drop on every
        # replica too (registry.principals.lifecycle bumps the epoch for those).
        self.on_invalidate: list[Callable[[], None]] = []

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._epoch = self._read_epoch()
        self._thread = threading.Thread(target=self._poll, name="routing-epoch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _poll(self) -> None:
        listener: Any = None
        retry_at = 0.0  # when to try LISTEN again after a failure (not every poll: a blackholed
        # host would make each attempt wait for the connect timeout)
        while not self._stopping.is_set():
            if (
                listener is None
                and self._listen_params is not None
                and time.monotonic() >= retry_at
            ):
                listener = self._listen()
                if listener is None:
                    retry_at = time.monotonic() + LISTEN_RETRY_S
            if listener is None:
                if self._stopping.wait(self._poll_s):
                    break
            else:
                try:  # wakes on a NOTIFY, else after poll_s
                    for _ in listener.notifies(timeout=self._poll_s, stop_after=1):
                        self.notifications += 1
                except Exception:
                    log.warning("routing LISTEN connection lost; polling", exc_info=True)
                    _close(listener)
                    listener = None
            try:
                epoch = self._read_epoch()
            except Exception:  # the database may be briefly unreachable: keep serving
                log.warning("routing epoch poll failed", exc_info=True)
                continue
            if epoch != self._epoch:
                self.invalidate(epoch)
        _close(listener)

    def _listen(self) -> Any:
        """A dedicated autocommit connection LISTENing on ``ROUTING_CHANNEL``; None when it
        cannot be opened (logged; polling goes on and the next round tries again)."""
        import psycopg  # the PostgreSQL driver; only on this dialect

        try:
            conn = psycopg.connect(**(self._listen_params or {}), autocommit=True)
            conn.execute(f"LISTEN {ROUTING_CHANNEL}")
        except Exception:
            log.warning(
                "routing LISTEN unavailable; polling every %ss", self._poll_s, exc_info=True
            )
            return None
        return conn

    def _read_epoch(self) -> int:
        # One statement, every poll_s on every replica: no transaction around it.
        with unit_of_work(self._sessions.read_statements) as session:
            return int(session.scalar(select(RoutingEpoch.epoch).where(RoutingEpoch.id == 1)) or 0)

    def sync(self) -> None:
        """Read the epoch now and drop the cache if it moved (what the poller does)."""
        epoch = self._read_epoch()
        if epoch != self._epoch:
            self.invalidate(epoch)

    def invalidate(self, epoch: int | None = None) -> None:
        with self._lock:
            self._tables = {}
            if epoch is not None:
                self._epoch = epoch
        for drop in self.on_invalidate:
            drop()

    # --- reads -------------------------------------------------------------------------

    def cached(self, name: str) -> RouteTable | None:
        """The cached table, or None when it must be loaded (never touches the database)."""
        table = self._tables.get(name)
        if table is None or table.expires_at <= time.monotonic():
            return None
        return table

    def load(self, name: str) -> RouteTable | None:
        """Load (and cache) the table of ``name``; None when there is no such deployment."""
        with unit_of_work(self._sessions.read) as session:
            draft = read_table(session, name)
        # Presigning talks to the store (a HEAD per file): never while holding a connection.
        table = draft.finish(self._store, self._presign_ttl_s) if draft is not None else None
        self.loads += 1
        if table is not None:
            with self._lock:
                tables = dict(self._tables)
                tables[name] = table
                self._tables = tables
        return table


FileSlot = tuple[dict[str, Any], str, str]
"""A file entry whose ``url`` is still to fill in, its blob hex digest, its API download path."""


@dataclass
class TableDraft:
    """A routing table read from the database whose file URLs are not filled in yet."""

    table: RouteTable
    document: dict[str, Any]
    answers: dict[str, dict[str, Any] | None]
    #: (file entry to complete, blob hex digest, API download path)
    files: list[FileSlot]

    def finish(self, store: ArtifactStore, presign_ttl_s: int) -> RouteTable:
        """Fill in download URLs (presigned where the store can) and serialise the answers."""
        for entry, digest, path in self.files:
            entry["url"] = store.presign_blob(digest, presign_ttl_s) or path
        answers = {arm: _dump(a) if a is not None else None for arm, a in self.answers.items()}
        return replace(
            self.table,
            table=_dump(self.document),
            stable=answers["stable"],
            candidate=answers["candidate"],
            # Refresh presigned URLs at half their lifetime (local store: no expiry to speak of).
            expires_at=time.monotonic() + max(presign_ttl_s / 2, 1.0),
        )


def _read_arm(
    session: Session,
    *,
    head: dict[str, Any],
    ns: Namespace,
    adapter: Adapter,
    base: dict[str, Any],
    version_id: uuid.UUID,
) -> tuple[dict[str, Any], dict[str, Any], list[FileSlot]]:
    """One arm's routing-table entry, its resolve answer (``head`` first: deployment,
    revision, arm) and the file entries of that answer."""
    v = session.get_one(AdapterVersion, version_id)
    files = session.scalars(
        select(VersionFile).where(VersionFile.adapter_version_id == v.id).order_by(VersionFile.name)
    ).all()
    entry = {
        "ref": f"{ns.name}/{adapter.name}@v{v.version}",
        "version": v.version,
        "digest": v.digest,
        "serving_name": serving_name(ns.name, adapter.name, v.version, v.digest),
        "peft_type": v.peft_type,
        "r": v.r,
    }
    files_path = f"/api/v1/adapters/{ns.name}/{adapter.name}/versions/v{v.version}/files"
    arm_files: list[dict[str, Any]] = []
    answer = {
        **head,
        **entry,
        "base": base["ref"],
        "base_digest": base["manifest_digest"],
        "files": arm_files,
    }
    slots: list[FileSlot] = []
    for f in files:
        file_entry: dict[str, Any] = {
            "name": f.name,
            "digest": f"sha256:{f.digest}",
            "size": f.size,
        }
        arm_files.append(file_entry)
        slots.append((file_entry, f.digest, f"{files_path}/{f.name}"))
    return entry, answer, slots


def _read_base(session: Session, dep: Deployment) -> dict[str, Any]:
    base_version = session.get_one(BaseModelVersion, dep.base_model_version_id)
    base_model = session.get_one(BaseModel, base_version.base_model_id)
    return {
        "ref": f"{base_model.name}@{base_version.revision}",
        "manifest_digest": base_version.manifest_digest,
    }


def read_table(session: Session, name: str) -> TableDraft | None:
    """The table of deployment ``name`` as stored (database reads only); None when missing."""
    dep = session.scalars(select(Deployment).where(Deployment.name == name)).one_or_none()
    if dep is None:
        return None
    revision = session.scalars(
        select(DeploymentRevision).where(
            DeploymentRevision.deployment_id == dep.id,
            DeploymentRevision.revision == dep.current_revision,
        )
    ).one()
    ns = session.get_one(Namespace, dep.namespace_id)
    adapter = session.get_one(Adapter, dep.adapter_id)
    base = _read_base(session, dep)
    share = revision.candidate_share_bp if revision.candidate_version_id else 0
    arms: dict[str, dict[str, Any] | None] = {}
    answers: dict[str, dict[str, Any] | None] = {}
    file_entries: list[FileSlot] = []
    for arm_name, version_id in (
        ("stable", revision.stable_version_id),
        ("candidate", revision.candidate_version_id),
    ):
        if version_id is None:
            arms[arm_name], answers[arm_name] = None, None
            continue
        head = {"deployment": dep.name, "revision": revision.revision, "arm": arm_name}
        arms[arm_name], answers[arm_name], slots = _read_arm(
            session, head=head, ns=ns, adapter=adapter, base=base, version_id=version_id
        )
        file_entries.extend(slots)
    document = {
        "deployment": dep.name,
        "revision": revision.revision,
        "hash_spec": revision.hash_spec,
        "salt": revision.salt,
        "share_bp": share,
        "base": base,
        "stable": arms["stable"],
        "candidate": arms["candidate"],
        "effective_at": revision.effective_at.isoformat().replace("+00:00", "Z"),
    }
    table = RouteTable(
        deployment=dep.name,
        deployment_id=dep.id,
        namespace=ns.name,
        revision=revision.revision,
        salt=revision.salt,
        share_bp=share,
        etag=f'"{dep.id.hex[:12]}-{revision.revision}"',
        table=b"",
        stable=None,
        candidate=None,
        expires_at=0.0,
    )
    return TableDraft(table, document, answers, file_entries)


def _dump(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _close(conn: Any) -> None:
    if conn is not None:
        try:
            conn.close()
        except Exception:  # closing a broken connection: nothing left to do
            log.debug("closing the LISTEN connection failed", exc_info=True)
