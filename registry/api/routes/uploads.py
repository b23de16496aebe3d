"""Upload sessions: stream adapter files (raw request bodies) into staging.

``PUT /api/v1/uploads/{id}/files/{name}`` takes the raw bytes with ``X-Content-Digest:
sha256:<hex>``. The body is read asynchronously in bounded batches and each batch is hashed and
written in the thread pool, so memory stays constant and the event loop never blocks on disk
or S3. No database transaction is open while bytes flow (SQLite's write lock would otherwise be
held for the whole upload): the session is checked before and recorded after, each in its own
short unit of work. Parallel PUTs into one session are safe: each streams into a staging key of
its own, and recording serialises on the session row (see ``registry.uploads.service``).
"""

from __future__ import annotations

import asyncio
import uuid

from fastapi import Request, status
from starlette.concurrency import run_in_threadpool

from registry.access.actor import registry_resource
from registry.api.deps import PrincipalDep, SessionDep, SessionsDep, SettingsDep, StoreDep, WriteDep
from registry.api.params import ContentDigest, UploadFilePath
from registry.api.routes._common import authenticated_router, responses
from registry.db.session import unit_of_work
from registry.errors import (
    DigestMismatch,
    ForbiddenFile,
    InvalidDigest,
    PayloadTooLarge,
    UploadNotFound,
    UploadStateConflict,
)
from registry.schemas import FileRead
from registry.settings import Settings
from registry.storage.base import ArtifactStore, StagedObject
from registry.uploads import direct
from registry.uploads import service as uploads
from registry.uploads.models import UploadFile, UploadPurpose, UploadSession
from registry.uploads.schemas import DirectInfo, UploadCreate, UploadRead

router = authenticated_router(prefix="/api/v1/uploads", tags=["uploads"])

BATCH_BYTES = 4 * 1024 * 1024


async def _stream_into(request: Request, writer: uploads.StagedFileWriter) -> StagedObject:
    """Receive the body in batches; hash and write each batch in the thread pool while the next
    one is received (at most one batch in flight: memory stays at ~2 batches)."""
    in_flight: asyncio.Future[None] | None = None
    parts: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            parts.append(chunk)
            size += len(chunk)
            if size >= BATCH_BYTES:
                data, parts, size = b"".join(parts), [], 0
                if in_flight is not None:
                    await in_flight
                in_flight = asyncio.ensure_future(run_in_threadpool(writer.write, data))
        if in_flight is not None:
            await in_flight
    except BaseException:
        # Let a write still running in the pool end before the caller aborts the writer.
        if in_flight is not None and not in_flight.done():
            await asyncio.wait([in_flight])
        raise
    if parts:
        await run_in_threadpool(writer.write, b"".join(parts))
    return await run_in_threadpool(writer.finish)


def _read(
    upload: UploadSession, files: list[UploadFile], direct: DirectInfo | None = None
) -> UploadRead:
    return UploadRead(
        id=upload.id,
        state=upload.state,
        expires_at=upload.expires_at,
        files=[FileRead(name=f.name, digest=f"sha256:{f.digest}", size=f.size) for f in files],
        direct=direct,
    )


def _direct_info(store: ArtifactStore, settings: Settings, purpose: str) -> DirectInfo | None:
    if purpose != UploadPurpose.adapter or direct.direct_uploads(store) is None:
        return None
    return DirectInfo(
        threshold_bytes=settings.direct_uploads.threshold_bytes,
        part_bytes=settings.direct_uploads.part_bytes,
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=UploadRead)
def create_upload(ctx: WriteDep, store: StoreDep, body: UploadCreate | None = None) -> object:
    """Open an upload session (files are then PUT one by one); needs ``upload`` (adapter files)
    or ``register_base_model`` (base weights)."""
    settings: Settings = ctx.settings
    purpose = UploadPurpose(body.purpose if body is not None else "adapter")
    action = "register_base_model" if purpose == UploadPurpose.base_model else "upload"
    ctx.actor.require(action, registry_resource())

    def produce() -> UploadRead:
        upload = uploads.create_upload(
            ctx.session,
            principal=ctx.principal,
            ttl_s=settings.server.upload_ttl_s,
            purpose=purpose,
        )
        ctx.actor.audit(
            ctx.session, "upload.create", f"upload:{upload.id}", after={"purpose": str(purpose)}
        )
        return _read(upload, [], _direct_info(store, settings, purpose))

    return ctx.idempotent(body, produce, status_code=201)


@router.get("/{upload_id}", response_model=UploadRead, responses=responses(UploadNotFound))
def get_upload(
    upload_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    settings: SettingsDep,
) -> UploadRead:
    """An upload session of the caller, with the files staged so far."""
    upload, files = uploads.get_upload(session, principal=principal, upload_id=upload_id)
    return _read(upload, files, _direct_info(store, settings, upload.purpose))


@router.put(
    "/{upload_id}/files/{name}",
    status_code=status.HTTP_201_CREATED,
    response_model=FileRead,
    responses=responses(
        UploadNotFound,
        UploadStateConflict,
        ForbiddenFile,
        DigestMismatch,
        InvalidDigest,
        PayloadTooLarge,
    ),
)
async def put_file(
    upload_id: uuid.UUID,
    name: UploadFilePath,
    request: Request,
    principal: PrincipalDep,
    sessions: SessionsDep,
    store: StoreDep,
    x_content_digest: ContentDigest,
) -> FileRead:
    """Stream one file into the session; the server hashes it and checks the claimed digest."""

    def prepare() -> uploads.FileTarget:
        with unit_of_work(sessions.read) as session:
            return uploads.prepare_file(
                session,
                principal=principal,
                upload_id=upload_id,
                name=name,
                claimed_digest=x_content_digest,
            )

    target = await run_in_threadpool(prepare)
    writer = uploads.StagedFileWriter(store, target)
    try:
        staged = await _stream_into(request, writer)
    except BaseException:
        await run_in_threadpool(writer.abort)
        raise

    def record() -> FileRead:
        try:
            with unit_of_work(sessions.write) as session:
                recorded = uploads.record_file(
                    session, principal=principal, target=target, staged=staged
                )
                row = recorded.row
                result = FileRead(name=row.name, digest=f"sha256:{row.digest}", size=row.size)
        except BaseException:
            # Refused (session closed meanwhile, file limit) or not committed: no row refers
            # to these bytes.
            uploads.drop_staged(store, [staged.key])
            raise
        # After the commit: the replaced file's bytes are unreferenced now.
        uploads.drop_staged(store, recorded.superseded)
        return result

    return await run_in_threadpool(record)
