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
    direct: DirectInfo | None = Field(
        None,
        description="Set when large files may be uploaded straight to the store "
        "(POST .../direct); null: PUT every file through the API.",
    )


class DirectInfo(BaseModel):
    """How this server takes direct uploads (S3 backend only)."""

    threshold_bytes: int = Field(
        description="Files of at least this size should go straight to the store."
    )
    part_bytes: int = Field(description="Part size of a direct upload.")


class DirectStart(Strict):
    adapter: str = Field(
        max_length=200,
        description="NS/NAME the file will be pushed to: the caller must be allowed to "
        "register versions there.",
    )
    name: str = Field(max_length=128, description="File name (as in the adapter directory).")
    size: int = Field(ge=0, description="Exact size in bytes.")
    digest: str = Field(max_length=80, description="sha256:<hex> of the whole file.")


class DirectPartUrl(BaseModel):
    part_number: int
    url: str


class DirectStartRead(BaseModel):
    id: str = Field(description="The direct upload's id within the session (for complete).")
    s3_upload_id: str = Field(description="The store's multipart upload id.")
    part_bytes: int = Field(description="Every part but the last has exactly this size.")
    parts: list[DirectPartUrl] = Field(description="One presigned PUT URL per part.")
    expires_at: datetime = Field(description="When the part URLs stop working.")


class DirectPart(Strict):
    part_number: int = Field(ge=1, le=10_000)
    etag: str = Field(min_length=1, max_length=80)


class DirectComplete(Strict):
    s3_upload_id: str = Field(min_length=1, max_length=1024)
    parts: list[DirectPart] = Field(min_length=1, max_length=10_000)
