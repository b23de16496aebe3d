"""Request and response bodies of the upload API (pydantic v2, unknown fields refused)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from registry.schemas import FileRead, Strict


class UploadCreate(Strict):
    purpose: Literal["adapter", "base_model"] = Field(
        "adapter", description="What the files are for: an adapter push or base weights."
    )


class UploadRead(BaseModel):
    id: uuid.UUID
    state: str
    expires_at: datetime
    files: list[FileRead] = Field(default_factory=list)
