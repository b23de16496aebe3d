"""Request and answer of ``/api/v1/deployments/{name}/mlflow-mirror``."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from registry.mlflow_mirror.service import DEFAULT_CANDIDATE_ALIAS, DEFAULT_STABLE_ALIAS

# MLflow's own alias rule (letters, digits, "_" and "-"), minus its reserved names.
Alias = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_-]+$")]
_RESERVED = re.compile(r"latest|[vV]\d+")


class MirrorPut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tracking_server: str | None = Field(
        None, max_length=512, description="An allow-listed MLflow server (None: the default)."
    )
    model: str = Field(
        min_length=1, max_length=300, pattern=r"^[^\x00-\x1f/]+$", description="Registered model."
    )
    stable_alias: Alias = DEFAULT_STABLE_ALIAS
    candidate_alias: Alias = DEFAULT_CANDIDATE_ALIAS
    enabled: bool = True

    @model_validator(mode="after")
    def _distinct(self) -> MirrorPut:
        if self.stable_alias == self.candidate_alias:
            raise ValueError("stable_alias and candidate_alias must differ")
        for alias in (self.stable_alias, self.candidate_alias):
            if _RESERVED.fullmatch(alias):
                raise ValueError(f"{alias!r} is reserved by MLflow")
        return self


class MirrorRead(BaseModel):
    deployment: str
    tracking_server: str
    model: str
    stable_alias: str
    candidate_alias: str
    enabled: bool
    cursor: int = Field(description="The last audit seq the mirror handled.")
    last_set: dict[str, str | None] = Field(
        description="Each alias → the MLflow version the mirror last left it on (null: removed)."
    )
    last_drift: dict[str, Any] | None
    last_error: str | None
    last_asserted_at: datetime | None
    created_at: datetime
    updated_at: datetime
