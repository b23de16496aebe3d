"""A job's result registered as its creator would register it: a compose or aggregate output
becomes the next version of the target adapter through the catalog's own registration (the
path ``POST /api/v1/adapters/{ns}/{name}/versions`` takes: upload session, validation against
the base, publishing, the insert transaction), with one lineage parent per input carrying its
part of the recipe; a merged checkpoint becomes a new base model version with its weights
uploaded (``base-models register --upload-weights``).

The last transaction registers the result and ends the job ``succeeded`` together, after
checking under the job's row lock that nobody cancelled it meanwhile.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from registry.auth.principal import AuthenticatedPrincipal
from registry.catalog import base_models, registration
from registry.catalog.lineage import BASE_MODEL_VERSION
from registry.catalog.models import LineageRelation
from registry.catalog.registration_inputs import stage_files
from registry.db.session import unit_of_work
from registry.jobs import lifecycle
from registry.jobs.env import Cancelled, Creator, WorkerEnv
from registry.jobs.materialise import LocalInput
from registry.jobs.models import JobKind, JobState
from registry.storage.base import DEFAULT_CHUNK_SIZE
from registry.uploads import service as uploads
from registry.uploads.models import UploadPurpose

RELATIONS = {
    JobKind.compose: LineageRelation.composed_from,
    JobKind.aggregate: LineageRelation.aggregated_from,
}
_BASE_FILE = re.compile(uploads.BASE_FILE_PATTERN)


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(DEFAULT_CHUNK_SIZE):
            yield chunk


def _stage(
    env: WorkerEnv,
    principal: AuthenticatedPrincipal,
    files: list[Path],
    purpose: UploadPurpose,
) -> uuid.UUID:
    """A new upload session of ``principal`` holding ``files`` (hashed and sniffed as PUTs)."""
    with unit_of_work(env.sessions.write) as session:
        upload_id = uploads.create_upload(
            session,
            principal=principal,
            ttl_s=env.settings.server.upload_ttl_s,
            purpose=purpose,
        ).id
    stage_files(
        env.sessions,
        store=env.store,
        principal=principal,
        upload_id=upload_id,
        files=((f.name, _chunks(f)) for f in files),
    )
    return upload_id


def parent_recipes(
    job_id: uuid.UUID, inputs: list[LocalInput], recipe: dict[str, Any]
) -> list[dict[str, Any]]:
    """Each input's part of the report's recipe: its weight, the method, the parameters (seed
    included), the implementation, and the job that computed it."""
    parameters = dict(recipe.get("parameters") or {})
    return [
        {
            "operation": recipe.get("operation"),
            "method": recipe.get("method"),
            "implementation": recipe.get("implementation"),
            "parameters": parameters,
            "seed": parameters.get("seed"),
            "weight": i.weight,
            "position": position,
            "inputs": len(inputs),
            "digest": i.digest,
            "job": str(job_id),
        }
        for position, i in enumerate(inputs)
    ]


def publish_adapter_version(
    env: WorkerEnv,
    claimed: lifecycle.Claimed,
    principal: AuthenticatedPrincipal,
    creator: Creator,
    out_dir: Path,
    inputs: list[LocalInput],
    recipe: dict[str, Any],
) -> dict[str, Any]:
    """Register ``out_dir`` as the next version of the job's target adapter, on the base of the
    first input, and end the job ``succeeded``; returns the job's result."""
    kind = JobKind(claimed.kind)
    namespace, _, adapter = claimed.target.partition("/")
    limits = registration.RegistrationLimits.from_settings(env.settings)
    parents = tuple(
        registration.ParentSpec(i.ref, RELATIONS[kind], part)
        for i, part in zip(inputs, parent_recipes(claimed.id, inputs, recipe), strict=True)
    )
    metadata = registration.VersionMetadata(
        description=f"{kind} of {len(inputs)} adapter(s) by job {claimed.id}", parents=parents
    )
    files = sorted(p for p in out_dir.iterdir() if p.is_file())
    upload_id = _stage(env, principal, files, UploadPurpose.adapter)
    with unit_of_work(env.sessions.read) as session:
        plan = registration.plan_version(
            session,
            actor=creator(session),
            limits=limits,
            namespace=namespace,
            adapter=adapter,
            base=inputs[0].base,
            upload_id=upload_id,
            source_uri=None,
            metadata=metadata,
        )
    prepared = registration.prepare_version(
        env.sessions,
        store=env.store,
        manifests=env.manifests,
        principal=principal,
        limits=limits,
        plan=plan,
    )
    with unit_of_work(env.sessions.write) as session:
        if lifecycle.cancel_requested(session, claimed.id):
            raise Cancelled()
        registered = registration.commit_version(
            session, actor=creator(session), store=env.store, prepared=prepared
        )
        result = {"ref": registered.ctx.ref, "digest": prepared.digest, "recipe": recipe}
        lifecycle.finish(
            session, claimed.id, JobState.succeeded, now=datetime.now(UTC), result=result
        )
    return result


def publish_base_version(
    env: WorkerEnv,
    claimed: lifecycle.Claimed,
    principal: AuthenticatedPrincipal,
    creator: Creator,
    out_dir: Path,
    adapter: LocalInput,
    recipe: dict[str, Any],
) -> dict[str, Any]:
    """Register the merged checkpoint in ``out_dir`` as the base model version ``NAME@REV`` of
    the job's target, weights uploaded, with ``merged_from`` lineage to the adapter version and
    to the base it was merged into (each carrying the recipe and the job), as a client-side
    merge records it, and end the job ``succeeded``; returns its result."""
    name, _, revision = claimed.target.rpartition("@")
    merged = {**recipe, "job": str(claimed.id)}
    parents = (
        registration.ParentSpec(adapter.ref, LineageRelation.merged_from, merged),
        registration.ParentSpec(
            claimed.params["base"], LineageRelation.merged_from, merged, BASE_MODEL_VERSION
        ),
    )
    files = sorted(p for p in out_dir.iterdir() if p.is_file() and _BASE_FILE.match(p.name))
    upload_id = _stage(env, principal, files, UploadPurpose.base_model)
    validation = env.settings.validation
    with unit_of_work(env.sessions.write) as session:
        if lifecycle.cancel_requested(session, claimed.id):
            raise Cancelled()
        view = base_models.register_base_version(
            session,
            store=env.store,
            actor=creator(session),
            name=name,
            revision=revision,
            config={},
            tensors={},
            upload_id=upload_id,
            max_header_bytes=validation.max_header_bytes,
            max_tensors=validation.max_tensors_per_file,
            parents=parents,
        )
        result = {
            "ref": claimed.target,
            "digest": view.version.manifest_digest,
            "recipe": recipe,
        }
        lifecycle.finish(
            session, claimed.id, JobState.succeeded, now=datetime.now(UTC), result=result
        )
    return result
