"""Settings from the environment (``REGISTRY_`` prefix, ``__`` between nested groups).

No module-level ``Settings()``: library code receives a ``Settings`` object; ``get_settings()``
is the cached one for the CLI and the server entry point.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class DatabaseSettings(BaseModel):
    url: str = Field(
        "sqlite:///./var/registry.db",
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user@host/db.",
    )
    echo: bool = Field(False, description="Log every SQL statement.")
    pool_size: int = Field(10, ge=1, description="PostgreSQL connection pool size.")
    max_overflow: int = Field(10, ge=0, description="PostgreSQL connections above pool_size.")
    statement_timeout_ms: int = Field(
        30_000, ge=0, description="PostgreSQL statement_timeout per connection (0 = none)."
    )
    sqlite_busy_timeout_ms: int = Field(
        15_000, ge=0, description="SQLite busy_timeout: how long a writer waits for the lock."
    )
    auto_migrate: bool = Field(
        False, description="Upgrade the schema at start-up instead of refusing an old one."
    )

    @field_validator("url")
    @classmethod
    def _normalise_url(cls, value: str) -> str:
        # Heroku-style and bare postgresql:// URLs would pick psycopg2, which we do not ship.
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @property
    def dialect(self) -> str:
        return "sqlite" if self.url.startswith("sqlite") else "postgresql"


class StorageSettings(BaseModel):
    backend: Literal["local", "s3"] = Field("local", description="Artifact store backend.")
    root: Path = Field(Path("./var/artifacts"), description="Directory of the local backend.")
    bucket: str | None = Field(None, description="S3 bucket (required for backend=s3).")
    prefix: str = Field("", description="Key prefix inside the bucket.")
    endpoint_url: str | None = Field(
        None, description="S3-compatible endpoint (MinIO, Ceph, R2, moto); None = AWS."
    )
    region: str = Field("us-east-1", description="S3 region.")
    access_key_id: str | None = Field(None, description="S3 access key (else boto3's chain).")
    secret_access_key: str | None = Field(None, description="S3 secret key.")
    presign_ttl_s: int = Field(900, ge=1, description="Lifetime of presigned download URLs.")
    connect_timeout_s: float = Field(5.0, gt=0, description="S3 connect timeout.")
    read_timeout_s: float = Field(60.0, gt=0, description="S3 read timeout.")
    max_attempts: int = Field(5, ge=1, description="S3 attempts per call (standard retry mode).")
    multipart_chunk_bytes: int = Field(
        8 * 1024 * 1024, ge=5 * 1024 * 1024, description="Part size of S3 multipart uploads."
    )
    checksum_mode: Literal["when_required", "when_supported"] = Field(
        "when_required",
        description="botocore request/response checksum mode; when_required suits most "
        "S3-compatible stores (our own sha256 is the integrity check).",
    )
    import_allowlist: list[str] = Field(
        default_factory=list,
        description="s3://bucket/prefix/ locations `adapters register --from` may read.",
    )
    gc_grace_s: int = Field(
        24 * 3600, ge=0, description="Unreferenced blobs / staging younger than this survive gc."
    )
    max_upload_bytes: int = Field(
        64 * 1024**3, ge=1, description="Largest single file accepted by an upload."
    )

    @model_validator(mode="after")
    def _bucket_for_s3(self) -> StorageSettings:
        if self.backend == "s3" and not self.bucket:
            raise ValueError("storage.bucket is required when storage.backend is 's3'")
        return self


class ValidationSettings(BaseModel):
    scan_limit_bytes: int = Field(
        64 * 1024 * 1024,
        ge=0,
        description="Adapters whose tensor data is at most this size are scanned for NaN/Inf.",
    )
    max_config_bytes: int = Field(
        256 * 1024, ge=1024, description="Largest accepted adapter_config.json / config.json."
    )


class AuthSettings(BaseModel):
    token_cache_s: float = Field(
        5.0,
        ge=0,
        description="Seconds a verified token is cached per process (0 = off); a revoked "
        "token stops working within this time.",
    )


class PolicySettings(BaseModel):
    directory: Path | None = Field(
        None,
        description="Policy directory (Cedar schema + policies, gates.yaml) loaded when the "
        "database holds no policy set yet; default: the policies/ shipped with the registry.",
    )
    promotion_ttl_s: int = Field(
        7 * 24 * 3600, ge=60, description="How long a promotion request stays open for approval."
    )


class OidcSettings(BaseModel):
    allow_insecure_loopback: bool = Field(
        False,
        description="Accept http:// issuers on loopback (tests, local dev); never in production.",
    )
    leeway_s: int = Field(30, ge=0, le=300, description="Clock leeway for exp/iat/nbf.")
    jwks_cache_s: int = Field(3600, ge=0, description="How long fetched JWKS keys are trusted.")
    jwks_refresh_min_s: float = Field(
        60.0, ge=0, description="An unknown kid refreshes the JWKS at most this often."
    )
    jwks_timeout_s: float = Field(
        3.0, gt=0, description="Bound on one JWKS / discovery fetch (a slow issuer)."
    )
    token_ttl_s: int = Field(
        900, ge=60, le=24 * 3600, description="Lifetime of a registry token minted for CI."
    )
    max_token_age_s: int = Field(
        3600, ge=60, description="Refuse OIDC tokens whose iat is older than this."
    )


class AuditSettings(BaseModel):
    signing_key_path: Path = Field(
        Path("./var/audit-signing.key"),
        description="Ed25519 private key (PEM) that signs audit checkpoints; created on first use.",
    )
    checkpoint_interval_s: float = Field(
        300.0, ge=0, description="Export a signed checkpoint this often (0 = only on demand)."
    )
    denied_events_per_window: int = Field(
        30,
        ge=1,
        description="At most this many authz.denied audit events per principal per window "
        "(per server process). Further denials still answer 403; the first one past the limit "
        "writes one authz.denied.suppressed event, the rest are counted in the metric "
        "registry_audit_denials_suppressed_total.",
    )
    denied_window_s: float = Field(
        60.0, gt=0, description="Length of the window of denied_events_per_window, in seconds."
    )


class ControllerSettings(BaseModel):
    enabled: bool = Field(True, description="Run the rollout controller in this server process.")
    interval_s: float = Field(
        5.0,
        gt=0,
        description="How often the controller analyses running rollouts (one round per interval; "
        "with several replicas one of them acts per round).",
    )


class RolloutSettings(BaseModel):
    routing_poll_s: float = Field(
        0.5, gt=0, le=5, description="How often each replica checks for deployment changes."
    )
    resolve_decision_cache_s: float = Field(
        5.0,
        ge=0,
        description="Seconds a resolve authorization decision is cached per token and namespace.",
    )


class ServerSettings(BaseModel):
    host: str = Field("127.0.0.1", description="Bind address of `serve`.")
    port: int = Field(8000, ge=1, le=65535, description="Port of `serve`.")
    idempotency_ttl_s: int = Field(
        24 * 3600, ge=60, description="How long Idempotency-Key records are kept."
    )
    upload_ttl_s: int = Field(
        6 * 3600, ge=60, description="How long an unfinished upload session stays open."
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="REGISTRY_", env_nested_delimiter="__", extra="ignore"
    )

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    validation: ValidationSettings = Field(default_factory=ValidationSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    oidc: OidcSettings = Field(default_factory=OidcSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    rollout: RolloutSettings = Field(default_factory=RolloutSettings)
    controller: ControllerSettings = Field(default_factory=ControllerSettings)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
