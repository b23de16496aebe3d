"""Request and response bodies of ``POST /api/v1/adapters/{ns}/{name}/mlflow-imports``."""

from __future__ import annotations

from pydantic import BaseModel, Field

from registry import refs
from registry.catalog.schemas import Tag, VersionRead
from registry.errors import InvalidName, InvalidReference
from registry.schemas import Strict, documented


class MlflowImportCreate(Strict):
    source_uri: str = Field(
        max_length=1024,
        description="runs:/<run_id>/<path>, models:/<name>/<version>, models:/<name>@<alias> "
        "or models:/m-<logged model id>.",
    )
    tracking_server: str | None = Field(
        None,
        max_length=512,
        description="http(s) URL of the MLflow tracking server, one of mlflow.allowed_servers "
        "(default: mlflow.default_server).",
    )
    base: str = Field(
        max_length=330,
        description="NAME@REVISION of a registered base model.",
        json_schema_extra=documented(refs.BASE_REF_PATTERN, InvalidName, InvalidReference),
    )
    description: str = Field("", max_length=10_000)
    tags: list[Tag] = Field(default_factory=list, max_length=50)


class MlflowFileRead(BaseModel):
    name: str
    path: str
    size: int | None


class MlflowMetricRead(BaseModel):
    key: str
    value: float
    step: int
    timestamp: int = Field(description="Milliseconds since the epoch, as MLflow logged it.")
    run_id: str | None
    recorded: bool = Field(description="Recorded as an evaluation (suite mlflow).")
    evaluation_id: str | None = None


class MlflowSourceRead(BaseModel):
    tracking_server: str
    source_uri: str
    run_id: str | None
    model_id: str | None
    model_version: str | None = Field(description="NAME/VERSION of a registered model version.")
    artifact_path: str = Field(description="The folder the adapter was fetched from.")
    files: list[MlflowFileRead]
    metrics: list[MlflowMetricRead]


class MlflowImportRead(BaseModel):
    created: bool = Field(description="False when this source was imported before (200).")
    version: VersionRead
    source: MlflowSourceRead
