"""Settings of direct uploads to S3 (``REGISTRY_DIRECT_UPLOADS__*``).

Kept out of ``registry/settings.py`` (one field there).
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class DirectUploadSettings(BaseModel):
    threshold_bytes: int = Field(
        64 * 1024**2,
        ge=1,
        description="s3 backend: `adapters push` sends files of at least this size straight to "
        "the bucket through presigned multipart URLs; the server never proxies their bytes.",
    )
    part_bytes: int = Field(
        64 * 1024**2,
        ge=5 * 1024**2,
        le=5 * 1024**3,
        description="Part size of a direct upload (one presigned URL per part).",
    )
    url_ttl_s: int = Field(
        900, ge=60, le=7 * 24 * 3600, description="Lifetime of presigned direct-upload part URLs."
    )
