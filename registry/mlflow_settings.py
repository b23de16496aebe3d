"""Settings of MLflow imports (``REGISTRY_MLFLOW__*``): which tracking servers the registry may
fetch from, and the bounds on every call it makes to one.

Kept out of :mod:`registry.settings` (one field there) so that module stays small.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator


def normalise_server(url: str) -> str:
    """``scheme://host[:port][/path]`` lower-cased scheme and host, no trailing slash."""
    value = url.strip()
    scheme, sep, rest = value.partition("://")
    if not sep:
        return value.rstrip("/")
    host, slash, path = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}{slash}{path}".rstrip("/")


class MlflowSettings(BaseModel):
    allowed_servers: list[str] = Field(
        default_factory=list,
        description="MLflow tracking servers (http(s)://host[:port][/prefix]) that "
        "`adapters import --from-mlflow` may fetch from; empty: MLflow imports are refused.",
    )
    default_server: str | None = Field(
        None, description="Tracking server used when an import names none."
    )
    connect_timeout_s: float = Field(3.0, gt=0, le=60, description="Connect timeout per call.")
    read_timeout_s: float = Field(
        30.0, gt=0, le=600, description="Seconds without a byte from MLflow before a call fails."
    )
    max_json_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="Largest MLflow REST answer read (JSON)."
    )
    max_file_bytes: int = Field(
        2 * 1024**3, ge=1024, description="Largest single adapter file downloaded from MLflow."
    )
    max_total_bytes: int = Field(
        8 * 1024**3, ge=1024, description="Most bytes one import downloads from MLflow."
    )
    max_listed_entries: int = Field(
        2000, ge=10, description="Most artifact entries one import lists (all folders)."
    )
    max_metrics: int = Field(
        200, ge=0, description="Most run metrics recorded as evaluations per import."
    )
    mirror_enabled: bool = Field(
        True,
        description="Run the MLflow mirror worker (deployments mirror) in this server process "
        "(one replica acts per round: a PostgreSQL advisory lock, SQLite's write lock).",
    )
    mirror_poll_s: float = Field(2.0, gt=0, description="Seconds between MLflow mirror rounds.")
    mirror_reassert_s: float = Field(
        300.0,
        gt=0,
        description="Every mirror binding is re-asserted this often even with no new event, so "
        "an alias moved by hand in MLflow is put back.",
    )
    mirror_lease_s: float = Field(
        60.0,
        gt=0,
        description="A mirror binding claimed by one replica is not claimed by another for this "
        "long.",
    )
    mirror_batch: int = Field(
        500,
        ge=1,
        le=1000,
        description="Audit events of the bound deployments the MLflow mirror reads per round.",
    )

    @field_validator("allowed_servers")
    @classmethod
    def _check_servers(cls, value: list[str]) -> list[str]:
        out = []
        for entry in value:
            url = normalise_server(entry)
            if not url.startswith(("http://", "https://")) or any(c in url for c in "?#@ "):
                raise ValueError(f"mlflow.allowed_servers entry {entry!r} is not an http(s) URL")
            out.append(url)
        return out
