"""Idempotency keys for POST requests (draft-ietf-httpapi-idempotency-key-header).

Same key + same request → the stored response, replayed. Same key + different request →
``idempotency_key_reused`` (422). A concurrent request with the same key →
``idempotency_key_in_flight`` (409; the client retries and then gets the replay). Keys are
scoped to the calling principal, so one caller can never read another's stored answers. The
record is written in the transaction of the change itself: after a crash both exist or neither.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.errors import BadRequest, IdempotencyKeyInFlight, IdempotencyKeyReused
from registry.idempotency.models import IdempotencyRecord

# Visible ASCII, 1-255 characters (also quoted in the OpenAPI document).
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
_KEY_RE = re.compile(KEY_PATTERN)
_PENDING = 0


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    body: Any


def fingerprint(method: str, path: str, body: Any) -> str:
    """sha256 over method, path and the canonical JSON of the parsed body."""
    canonical = json.dumps(
        [method.upper(), path, body], sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str) -> str:
    if not _KEY_RE.fullmatch(key):
        raise BadRequest(
            "Idempotency-Key must be 1-255 visible ASCII characters",
            context={"header": "Idempotency-Key"},
        )
    return key


def begin(
    session: Session, *, principal_id: uuid.UUID, key: str, fingerprint: str, ttl_s: int
) -> tuple[StoredResponse | None, IdempotencyRecord | None]:
    """Look the key up; return a stored response to replay, or claim the key for this request.

    Claiming inserts a pending row (inside a SAVEPOINT): a concurrent request with the same key
    blocks on the unique index until this transaction ends, then gets ``in flight``.
    """
    check_key(key)
    now = datetime.now(UTC)
    found = _lookup(session, principal_id, key)
    if found is not None and found.expires_at <= now:
        session.delete(found)
        session.flush()
        found = None
    if found is not None:
        return _stored(found, key, fingerprint), None
    record = IdempotencyRecord(
        principal_id=principal_id,
        key=key,
        fingerprint=fingerprint,
        status_code=_PENDING,
        response=None,
        expires_at=now + timedelta(seconds=ttl_s),
    )
    try:
        with session.begin_nested():
            session.add(record)
            session.flush()
    except IntegrityError as exc:
        raise IdempotencyKeyInFlight(
            "a request with this key is in progress", context={"key": key}
        ) from exc
    return None, record


def peek(
    session: Session, *, principal_id: uuid.UUID, key: str, fingerprint: str
) -> StoredResponse | None:
    """The stored response to replay for this key, or None when the request is new; claims
    nothing (a read). For requests that do slow work before their write transaction: a replay
    is answered before the work, and ``begin`` claims the key in the write transaction.

    Errors as ``begin``: ``idempotency_key_reused``, ``idempotency_key_in_flight``.
    """
    check_key(key)
    found = _lookup(session, principal_id, key)
    if found is None or found.expires_at <= datetime.now(UTC):
        return None
    return _stored(found, key, fingerprint)


def _lookup(session: Session, principal_id: uuid.UUID, key: str) -> IdempotencyRecord | None:
    stmt = select(IdempotencyRecord).where(
        IdempotencyRecord.principal_id == principal_id, IdempotencyRecord.key == key
    )
    return session.scalars(stmt).one_or_none()


def _stored(found: IdempotencyRecord, key: str, fingerprint: str) -> StoredResponse:
    if found.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with a different request", context={"key": key}
        )
    if found.status_code == _PENDING:
        raise IdempotencyKeyInFlight("a request with this key is in progress", context={"key": key})
    return StoredResponse(found.status_code, found.response)


def complete(session: Session, *, record: IdempotencyRecord, status_code: int, body: Any) -> None:
    """Store the response on the claimed record (same transaction as the change)."""
    record.status_code = status_code
    record.response = body
    session.flush()


def purge_expired(session: Session, *, now: datetime | None = None) -> int:
    """Delete expired records; returns how many."""
    result = session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= (now or datetime.now(UTC)))
    )
    return int(getattr(result, "rowcount", 0) or 0)
