"""Request and response bodies of the API for the audit log, its verification and checkpoints
(pydantic v2, unknown fields refused)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class AuditEventRead(BaseModel):
    seq: int
    at: datetime
    actor: str | None
    action: str
    resource: str
    decision: dict[str, Any] | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None
    prev_hash: str
    hash: str


class AuditVerifyRead(BaseModel):
    ok: bool
    events: int
    checkpoints: int
    first_bad_seq: int | None = None
    reason: str | None = None
    checkpoint_seq: int | None = Field(None, description="The checkpoint that failed, if one did.")
    bad_range: list[int] | None = Field(
        None,
        description="checkpoint_mismatch: [first, last] seq of the events holding the first edit "
        "(first == last when the edited event was located).",
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="no_checkpoints: nothing outside the database vouches for the log.",
    )
    last_checkpoint_seq: int | None = Field(
        None,
        description="The newest verified checkpoint's seq (events after it are anchored "
        "by nothing but the chain).",
    )


class CheckpointRead(BaseModel):
    seq: int
    hash: str
    at: datetime
    key_id: str
