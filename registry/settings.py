"""Settings from the environment (``REGISTRY_`` prefix, ``__`` between nested groups).

No module-level ``Settings()``: library code receives a ``Settings`` object; ``get_settings()``
is the cached one for the CLI and the server entry point.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from registry.direct_settings import DirectUploadSettings
from registry.mlflow_settings import MlflowSettings
from registry.oidc_settings import ConsoleOidcSettings, OidcSettings
from registry.webhook_settings import WebhookSettings

if TYPE_CHECKING:
    from registry.validation.patterns import RegexLimits


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
    lock_timeout_ms: int = Field(
        5_000,
        ge=0,
        description="PostgreSQL lock_timeout: how long a statement waits for a row or table "
        "lock before giving up with 503 (0 = none).",
    )
    idle_in_transaction_timeout_ms: int = Field(
        60_000,
        ge=0,
        description="PostgreSQL idle_in_transaction_session_timeout: a transaction left open "
        "without work this long is ended by the server (0 = none).",
    )
    connect_timeout_s: int = Field(
        3, ge=1, le=60, description="PostgreSQL connect timeout (libpq connect_timeout)."
    )
    client_grace_s: float = Field(
        5.0,
        gt=0,
        description="PostgreSQL: a statement (or commit) without an answer for "
        "statement_timeout plus this long is abandoned by the client and its connection "
        "closed (a frozen server or network path cannot enforce statement_timeout itself).",
    )
    pool_timeout_s: float = Field(
        5.0,
        gt=0,
        description="How long a request waits for a pooled connection before a 503.",
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
    connect_timeout_s: float = Field(3.0, gt=0, description="S3 connect timeout.")
    read_timeout_s: float = Field(
        10.0, gt=0, description="S3 read timeout (seconds without a byte from the store)."
    )
    max_attempts: int = Field(3, ge=1, description="S3 attempts per call (standard retry mode).")
    breaker_threshold: int = Field(
        3,
        ge=1,
        description="Consecutive S3 attempts without any answer (timeouts, refused connections; "
        "each retry counts) that open the circuit breaker: calls then fail at once with 503 "
        "for breaker_cooldown_s.",
    )
    breaker_cooldown_s: float = Field(
        10.0, gt=0, description="How long an open S3 circuit breaker fails calls before a probe."
    )
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
        24 * 3600,
        ge=0,
        description="Unreferenced blobs / staging younger than this survive gc; `storage gc` "
        "refuses a value below server.upload_ttl_s unless --force.",
    )
    max_upload_bytes: int = Field(
        64 * 1024**3, ge=1, description="Largest single file accepted by an upload."
    )

    @model_validator(mode="after")
    def _bucket_for_s3(self) -> StorageSettings:
        if self.backend == "s3" and not self.bucket:
            raise ValueError("storage.bucket is required for backend s3: REGISTRY_STORAGE__BUCKET")
        return self


class ValidationSettings(BaseModel):
    scan_limit_bytes: int = Field(
        64 * 1024 * 1024,
        ge=0,
        description="Tensor data at most this size is scanned for NaN/Inf; sparse indices too.",
    )
    max_config_bytes: int = Field(
        256 * 1024, ge=1024, description="Largest accepted adapter_config.json / config.json."
    )
    max_header_bytes: int = Field(
        100_000_000,
        ge=1024,
        description="Largest safetensors JSON header (adapters and base checkpoints), refused "
        "from the 8-byte length before it is read; 100 MB is the reference reader's own cap.",
    )
    max_tensors_per_file: int = Field(
        250_000,
        ge=1,
        description="Most tensors in one safetensors file; refused while the header is scanned "
        "(a LoRA on every expert of a 235B MoE has ~75k).",
    )
    max_text_bytes: int = Field(
        8 * 1024 * 1024,
        ge=1024,
        description="Largest text extra other than the vocabulary files (README.md, "
        "tokenizer_config.json, special_tokens_map.json, chat templates ...); refused from its "
        "size before it is read.",
    )
    max_tokenizer_bytes: int = Field(
        40 * 1024 * 1024,
        ge=1024,
        description="Largest tokenizer.json / vocab.json / merges.txt (Gemma 3's tokenizer.json "
        "is 33 MB). Checking JSON syntax costs about 10-30x the size in memory.",
    )
    max_config_patterns: int = Field(
        4096,
        ge=1,
        description="Most regexes in one adapter_config.json (string target_modules, "
        "rank_pattern/alpha_pattern keys, layers_pattern entries ...).",
    )
    max_pattern_chars: int = Field(
        4096, ge=64, description="Longest regex in adapter_config.json, as peft composes it."
    )
    regex_match_budget: int = Field(
        200_000,
        ge=1000,
        description="Most regex evaluations (pattern x module name) in one validation.",
    )
    regex_step_budget: int = Field(
        1_000_000,
        ge=1000,
        description="Steps of the bounded backtracking matcher (patterns RE2 cannot run: "
        "lookarounds, backreferences, (?i)) in one validation; ~1 s of CPU.",
    )

    def regex_limits(self) -> RegexLimits:
        """The bounds on adapter_config.json regexes, for the validator."""
        from registry.validation.patterns import RegexLimits

        return RegexLimits(
            max_pattern_chars=self.max_pattern_chars,
            max_patterns=self.max_config_patterns,
            match_budget=self.regex_match_budget,
            step_budget=self.regex_step_budget,
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
        "database holds no policy set yet; default: registry/policies/, shipped in the package.",
    )
    promotion_ttl_s: int = Field(
        7 * 24 * 3600, ge=60, description="How long a promotion request stays open for approval."
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


class JobsSettings(BaseModel):
    enabled: bool = Field(True, description="Run the adapter maths job worker in this process.")
    concurrency: int = Field(1, ge=1, le=64, description="Jobs this process runs at once.")
    poll_s: float = Field(2.0, gt=0, description="How often an idle worker looks for jobs.")
    stale_after_s: float = Field(
        300.0,
        gt=0,
        description="A running job whose heartbeat is older than this was left by a stopped "
        "worker: it is queued again, or failed (job_failed) after max_attempts claims.",
    )
    max_attempts: int = Field(3, ge=1, le=100, description="Claims of one job at most.")


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
    console_session_ttl_s: int = Field(
        8 * 3600, ge=60, description="Longest web console session (never past its token's expiry)."
    )
    upload_ttl_s: int = Field(
        6 * 3600,
        ge=60,
        description="How long an unfinished upload session stays open; the smallest grace "
        "`storage gc` accepts without --force.",
    )
    max_json_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="Largest JSON request body (413 payload_too_large above it, refused before "
        "the body is read).",
    )
    max_manifest_body_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        description="Largest body of POST /api/v1/base-models (a weights manifest: ~100 bytes "
        "per tensor).",
    )
    max_json_depth: int = Field(
        32, ge=4, le=200, description="Deepest nesting of arrays/objects in a JSON body."
    )
    max_header_bytes: int = Field(
        32 * 1024,
        ge=4096,
        description="Largest request line plus headers (431, connection closed, above it).",
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Seconds a connection may take to send a complete request line and headers "
        "(408 and close after it: slow-loris guard).",
    )
    body_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Seconds a JSON request body may take to arrive in full (408 after it).",
    )
    idle_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Seconds a streamed upload may go without receiving a byte (408 after it).",
    )
    keep_alive_s: int = Field(
        5, ge=1, description="Seconds an idle keep-alive connection stays open."
    )
    readiness_timeout_s: float = Field(
        1.5,
        gt=0,
        le=30,
        description="/readyz answers within this long; a dependency check still running is "
        "reported as timeout.",
    )
    min_free_disk_bytes: int = Field(
        64 * 1024 * 1024,
        ge=0,
        description="/readyz reports disk_full when the SQLite database's or the local artifact "
        "store's filesystem has less free space than this.",
    )
    max_concurrency: int | None = Field(
        1000,
        ge=1,
        description="Connections and requests one worker handles at once; beyond it new "
        "requests get 503 (None: unbounded).",
    )


class MetricsSettings(BaseModel):
    port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Port of a second listener serving only GET /metrics without a token, for "
        "Prometheus (None: none; /metrics on the main port needs a token either way).",
    )
    host: str = Field(
        "127.0.0.1",
        description="Bind address of the metrics listener (0.0.0.0 in a pod; keep it off "
        "public networks).",
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
    jobs: JobsSettings = Field(default_factory=JobsSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    direct_uploads: DirectUploadSettings = Field(default_factory=DirectUploadSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    console_oidc: ConsoleOidcSettings = Field(default_factory=ConsoleOidcSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
