"""Request and response bodies of the API for trusted publishers and the tokens they exchange
(pydantic v2, unknown fields refused)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from registry import refs
from registry.schemas import Strict, documented

NamespaceName = Annotated[str, Field(json_schema_extra=documented(refs.SIMPLE_NAME_PATTERN))]
_SIMPLE = documented(refs.SIMPLE_NAME_PATTERN)
_PRINCIPAL = documented(refs.PRINCIPAL_PATTERN)


class PublisherCreate(Strict):
    name: str = Field(max_length=64, json_schema_extra=_SIMPLE)
    kind: Literal["github", "gitlab"] = "github"
    issuer: str = Field(max_length=512)
    audience: str = Field(max_length=256)
    repository: str = Field(max_length=256)
    repository_owner_id: str = Field(max_length=64)
    workflow_ref: str = Field(
        max_length=512, description="OWNER/REPO/.github/workflows/FILE.yml (without @ref)."
    )
    ref: str | None = Field(None, max_length=256)
    environment: str | None = Field(None, max_length=128)
    require_protected_ref: bool = True
    principal: str = Field(max_length=128, json_schema_extra=_PRINCIPAL)
    namespaces: list[NamespaceName] = Field(min_length=1, max_length=50)


class PublisherRead(BaseModel):
    id: uuid.UUID
    name: str
    kind: str
    issuer: str
    audience: str
    repository: str
    repository_owner_id: str
    workflow_ref: str
    ref: str | None
    environment: str | None
    require_protected_ref: bool
    principal: str
    namespaces: list[str]
    created_at: datetime


class OidcTokenRead(BaseModel):
    token: str
    expires_at: datetime
    principal: str
    identity: dict[str, Any]
