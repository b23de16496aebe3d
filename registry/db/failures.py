"""Which database failures are outages (503 + ``Retry-After``) and why.

The API answers ``503 database_unavailable`` with a ``reason`` for these, never a 500: the
request can be retried and nothing was changed (the transaction rolled back).
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

# PostgreSQL SQLSTATEs: class 53 is "insufficient resources" (53100 disk_full, 53200
# out_of_memory, 53300 too_many_connections); 57014 query_canceled (statement_timeout);
# 55P03 lock_not_available (lock_timeout); 40001/40P01 serialization failure / deadlock;
# class 08 connection exceptions; 57P01-57P03 the server is shutting down or starting;
# 25006 read_only_sql_transaction: the session reached a standby (a failover under way, or a
# URL without target_session_attrs=read-write).
_PG_REASONS = {
    "25006": "read_only",
    "53100": "disk_full",
    "57014": "statement_timeout",
    "55P03": "lock_timeout",
    "40001": "conflict_retry",
    "40P01": "conflict_retry",
}
# SQLite result codes (Python >= 3.11 exposes sqlite_errorcode): 13 SQLITE_FULL, 5/6 BUSY/LOCKED.
_SQLITE_REASONS = {13: "disk_full", 5: "busy", 6: "busy", 10: "io_error"}
_TEXT_REASONS = (
    ("database or disk is full", "disk_full"),
    ("no space left on device", "disk_full"),
    ("database is locked", "busy"),
    ("database table is locked", "busy"),
    ("did not answer within", "no_answer"),
    ("connection", "connection"),
)


def outage_reason(exc: DBAPIError) -> str | None:
    """Why ``exc`` is a (transient) database outage, or None when it is a real bug."""
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        if sqlstate in _PG_REASONS:
            return _PG_REASONS[sqlstate]
        if sqlstate.startswith(("53", "08", "57P")):
            return "resources" if sqlstate.startswith("53") else "connection"
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int) and (code & 0xFF) in _SQLITE_REASONS:
        return _SQLITE_REASONS[code & 0xFF]
    if exc.connection_invalidated:
        return "connection"
    text = str(orig if orig is not None else exc).lower()
    return next((reason for needle, reason in _TEXT_REASONS if needle in text), None)
