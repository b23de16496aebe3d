"""``adapters push | register | validate``: the commands that bring a new version in (or check
one locally). Registered on the ``adapters`` group by :mod:`registry.cli.adapters`."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from registry.cli._common import (
    base_dir_option,
    client,
    dir_files,
    flag,
    option_group,
    parse_adapter,
    parse_base,
    version_body,
)
from registry.cli._output import OutputOpt, State, emit, exit_with_error, get_state, render_record

if TYPE_CHECKING:
    from registry.settings import ValidationSettings
    from registry.validation.manifest import BaseManifest

AdapterOpt = Annotated[
    str, typer.Option("--adapter", metavar="NS/NAME", help="Adapter to add a version to.")
]
BaseOpt = Annotated[
    str,
    typer.Option("--base", metavar="NAME@REV", help="Registered base model revision."),
]
DatasetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--dataset",
        metavar="NAME=DIGEST",
        help="Training dataset, NAME=sha256:<hex> (repeatable).",
        show_default=False,
    ),
]
ParentOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--parent",
        metavar="REF:RELATION",
        help="Lineage edge, e.g. acme/bot@v3:continued_from (split on the last ':'; repeatable).",
        show_default=False,
    ),
]
TagOpt = Annotated[
    list[str] | None, typer.Option("--tag", help="Tag (repeatable).", show_default=False)
]
DescriptionOpt = Annotated[
    str | None, typer.Option("--description", help="Free text.", show_default=False)
]
GitCommitOpt = Annotated[
    str | None, typer.Option("--git-commit", help="Training code commit (hex).", show_default=False)
]
MlflowOpt = Annotated[
    str | None,
    typer.Option("--mlflow-run", metavar="ID", help="MLflow run id.", show_default=False),
]
DtypeOpt = Annotated[
    str | None,
    typer.Option(
        "--training-base-dtype",
        help="dtype of the base during training, e.g. bf16.",
        show_default=False,
    ),
]
QuantOpt = Annotated[
    str | None,
    typer.Option(
        "--quantization",
        help="Quantization of the base during training, e.g. nf4.",
        show_default=False,
    ),
]

TrainedOnOpt = Annotated[
    str | None,
    typer.Option(
        "--trained-on",
        metavar="NAME@REV",
        help="QLoRA: the quantized base revision it was trained on (registered with "
        "--quantized-from the --base revision); lineage trained_on, shown by adapters show.",
        show_default=False,
    ),
]

_PUSHED_KEYS = ["ref", "digest", "state", "peft_type", "r", "base", "serving_name", "warnings"]


@dataclass(frozen=True, slots=True)
class VersionOptions:
    """The options ``push`` and ``register`` share: where the version goes and its metadata.
    :data:`with_version_options` declares them once for both commands."""

    adapter: AdapterOpt
    base: BaseOpt
    datasets: DatasetOpt = None
    parents: ParentOpt = None
    tags: TagOpt = None
    description: DescriptionOpt = None
    git_commit: GitCommitOpt = None
    mlflow_run: MlflowOpt = None
    training_base_dtype: DtypeOpt = None
    quantization: QuantOpt = None
    trained_on: TrainedOnOpt = None

    def body(self) -> dict[str, Any]:
        """The metadata part of ``POST .../versions`` (every option but ``--adapter``)."""
        metadata = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "adapter"}
        return version_body(**metadata)


#: Gives ``push`` and ``register`` the shared options as one ``options: VersionOptions``.
with_version_options = option_group(VersionOptions, "options")


def _pushed(version: dict[str, Any]) -> str:
    return render_record(version, _PUSHED_KEYS)


@with_version_options
def push(
    ctx: typer.Context,
    directory: Annotated[
        Path,
        typer.Argument(
            metavar="DIR",
            exists=True,
            file_okay=False,
            dir_okay=True,
            help="Adapter directory (adapter_config.json, adapter_model.safetensors, "
            "optional README.md / tokenizer files).",
        ),
    ],
    options: VersionOptions,
    output: OutputOpt = None,
    direct: Annotated[
        bool,
        typer.Option(
            "--direct/--no-direct",
            help="Send large files straight to the server's S3 bucket when it offers it.",
        ),
    ] = True,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait",
            help="After a direct upload, wait until the server has checked the stored bytes.",
        ),
    ] = True,
) -> None:
    """Upload every file of DIR and register it as the next version of NS/NAME.

    Every regular file directly in DIR is sent as is (no sub-directories); the server refuses
    anything outside the allowed set (forbidden_file) and validates the adapter against the base
    before the version exists. The adapter is created by its first version.

    Direct uploads (S3 backend): files of at least the server's threshold (64 MiB by default)
    go straight to the bucket through presigned multipart URLs, parts in parallel; the server
    never proxies them. The version is "verifying" until the server has hashed the stored
    bytes, then "validated" (or "quarantined" on a mismatch); push waits for that unless
    --no-wait. Other files, and every file on a local-storage server, go through the API.

    JSON: the version {"ref", "version", "digest", "state", "peft_type", "files", ...}.
    Exit 6 for a bad adapter (error code + context.reason), 4 for an unknown namespace or base,
    5 when the same content is already registered (version_exists).
    """
    state = get_state(ctx)
    namespace, name = parse_adapter(options.adapter)
    body = options.body()
    files = dir_files(directory)
    if not files:
        exit_with_error(state, "usage", f"{directory} holds no files", {"dir": str(directory)})
    from registry.cli._progress import progress_bars

    with client(state) as api, progress_bars(state, api):
        version = api.push(namespace, name, files, body, direct=direct, wait=wait)
    emit(state, version, lambda: _pushed(version))


@with_version_options
def register(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Option(
            "--from",
            metavar="s3://BUCKET/PREFIX/",
            help="Objects a training job already pushed (inside the server's import allow-list).",
        ),
    ],
    options: VersionOptions,
    output: OutputOpt = None,
) -> None:
    """Register the adapter files under an s3:// prefix as the next version of NS/NAME.

    The server reads and verifies the objects itself; only allow-listed buckets / prefixes are
    accepted (exit 3, uri_not_allowed).

    JSON: the version {"ref", "version", "digest", "state", "source_uri", ...}.
    """
    state = get_state(ctx)
    namespace, name = parse_adapter(options.adapter)
    if not source.startswith("s3://"):
        raise typer.BadParameter("expected s3://bucket/prefix/", param_hint="--from")
    body = options.body()
    body["source_uri"] = source
    with client(state) as api:
        version = api.register_version(namespace, name, body)
    emit(state, version, lambda: _pushed(version))


def _validation_settings() -> ValidationSettings:
    from registry.settings import Settings, ValidationSettings

    try:
        return Settings().validation
    except ValueError:  # unrelated settings invalid in this environment: use the defaults
        return ValidationSettings()


def _base_manifest(state: State, base_dir: Path | None, base: str | None) -> BaseManifest | None:
    from registry.validation.manifest import BaseManifest, read_base_dir

    if base_dir is not None:
        return read_base_dir(base_dir)
    if base is not None:
        name, revision = parse_base(base)
        with client(state) as api:
            return BaseManifest.from_json(api.get_base_manifest(name, revision))
    return None


def validate(
    ctx: typer.Context,
    directory: Annotated[
        Path,
        typer.Argument(
            metavar="DIR", exists=True, file_okay=False, dir_okay=True, help="Adapter directory."
        ),
    ],
    base_dir: Annotated[
        Path | None,
        base_dir_option("Local base checkpoint (config.json + safetensors headers)."),
    ] = None,
    base: Annotated[
        str | None,
        flag(
            "--base", "Check against a registered base's manifest (needs the server).", "NAME@REV"
        ),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Validate an adapter directory locally, with the server's own checks (no upload).

    Every regular file of DIR is checked: allowed files, config schema and peft type, strict
    safetensors parse (headers only), tensors vs config, and, with --base-dir (local) or --base
    (fetched from the server), structural compatibility with the base weights manifest.

    JSON: exit 0 and {"valid": true, "peft_type", "r", "target_modules", "warnings", ...};
    exit 6 and {"error": code, "detail", "context": {"reason", ...}} for a bad adapter.
    """
    from registry.validation import FileSource, validate_adapter

    state = get_state(ctx)
    if base_dir is not None and base is not None:
        raise typer.BadParameter("give --base-dir or --base, not both", param_hint="--base")
    limits = _validation_settings()
    manifest = _base_manifest(state, base_dir, base)
    sources = {path.name: FileSource(path) for path in dir_files(directory)}
    report = validate_adapter(
        sources,
        base=manifest,
        scan_limit_bytes=limits.scan_limit_bytes,
        max_config_bytes=limits.max_config_bytes,
        max_header_bytes=limits.max_header_bytes,
        max_tensors=limits.max_tensors_per_file,
        max_text_bytes=limits.max_text_bytes,
        max_tokenizer_bytes=limits.max_tokenizer_bytes,
        regex_limits=limits.regex_limits(),
    )
    result: dict[str, Any] = {"valid": True, **report.to_json()}
    if manifest is not None:
        result["base_manifest_digest"] = manifest.digest
    emit(state, result, lambda: _validated(result))


def _validated(result: dict[str, Any]) -> str:
    text = "valid: " + render_record(
        result,
        [
            "peft_type",
            "r",
            "target_modules",
            "tensor_count",
            "trainable_params",
            "checked_against_base",
        ],
    ).replace("\n", "\n       ")
    for warning in result.get("warnings", []):
        text += f"\nwarning: {warning}"
    return text
