"""Request and response bodies of the API for principals, their namespace memberships and API
tokens (pydantic v2, unknown fields refused)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from registry import refs
from registry.errors import BadRequest
from registry.policy.types import ACTIONS
from registry.schemas import Strict, documented, refused_with

NamespaceName = Annotated[str, Field(json_schema_extra=documented(refs.SIMPLE_NAME_PATTERN))]
_PRINCIPAL = documented(refs.PRINCIPAL_PATTERN)
RoleName = Literal["viewer", "developer", "approver", "operator", "admin", "auditor"]


class PrincipalCreate(Strict):
    name: str = Field(max_length=128, json_schema_extra=_PRINCIPAL)
    role: RoleName
    kind: Literal["human", "service"] = "human"
    namespaces: list[NamespaceName] = Field(default_factory=list, max_length=100)
    ci_identity: str | None = Field(
        None,
        max_length=128,
        description="The CI login (e.g. GitHub actor) of this human.",
        json_schema_extra=documented(refs.CI_IDENTITY_PATTERN, BadRequest),
    )


class MembershipAdd(Strict):
    namespaces: list[NamespaceName] = Field(min_length=1, max_length=100)


class MembershipRemove(Strict):
    namespaces: list[NamespaceName] = Field(min_length=1, max_length=100)


class RoleChange(Strict):
    role: RoleName


class PrincipalRead(BaseModel):
    id: uuid.UUID
    name: str
    kind: str
    role: str
    namespaces: list[str]
    ci_identity: str | None
    created_at: datetime
    disabled: bool


class TokenCreate(Strict):
    principal: str | None = Field(
        None, max_length=128, description="Default: the caller.", json_schema_extra=_PRINCIPAL
    )
    name: str = Field("", max_length=128)
    ttl_days: int | None = Field(
        90,
        ge=1,
        le=366,
        description="Lifetime in days; null: never expires. Omitted: 90, or less so that the "
        "token does not outlive the calling token. An explicit value (or null) that would "
        "outlive the calling token is refused (403 token_exceeds_parent).",
    )
    scopes: list[str] | None = Field(
        None,
        max_length=32,
        description="Actions the token may use; null: every action. Omitted: the calling "
        "token's scopes. Scopes the calling token does not hold are refused (403 "
        "token_exceeds_parent).",
        json_schema_extra={
            "minItems": 1,
            "items": {"enum": list(ACTIONS)},
            **refused_with(BadRequest),
        },
    )


class TokenRead(BaseModel):
    id: uuid.UUID
    principal: str
    name: str
    scopes: list[str] | None
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime


class TokenIssued(TokenRead):
    token: str = Field(description="Shown once; only its sha256 is stored.")
