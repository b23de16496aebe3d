"""Request and response bodies of the API for policy sets (pydantic v2, unknown fields refused)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from registry.schemas import Strict


class PolicyApply(Strict):
    schema_text: str = Field(max_length=256 * 1024)
    policies_text: str = Field(max_length=1024 * 1024)
    gates_text: str = Field(max_length=256 * 1024)
    rollout_text: str = Field("", max_length=256 * 1024, description="rollout.yaml; '' = defaults")
    source: str = Field("", max_length=1024)


class PolicyRead(BaseModel):
    version: int
    digest: str
    source: str
    applied_at: datetime | None
    schema_text: str
    policies_text: str
    gates_text: str
    rollout_text: str
