"""Direct uploads (S3 backend): a large file goes from the client straight to the bucket through
presigned multipart part URLs, and this server never proxies its bytes.

``POST /api/v1/uploads/{id}/direct`` starts one (the caller owns the session and may register
versions of the adapter it names) and answers one short-lived presigned URL per part;
``POST /api/v1/uploads/{id}/direct/{direct_id}/complete`` completes it with the parts' ETags and
records the file in the session with its declared digest. Registration then leaves the version
``verifying`` until the verification job has hashed the stored object
(``registry.uploads.direct``, docs/storage.md). No transaction is held while the store is called.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Path, status
from starlette.concurrency import run_in_threadpool

from registry.access.actor import Actor
from registry.api.deps import DbSession, SlowWriteDep, StoreDep
from registry.api.routes._common import authenticated_router, responses
from registry.errors import (
    BadRequest,
    DirectUploadUnsupported,
    ForbiddenFile,
    InvalidDigest,
    InvalidPartList,
    PayloadTooLarge,
    PolicyDenied,
    UploadNotFound,
    UploadStateConflict,
)
from registry.schemas import FileRead
from registry.uploads import direct
from registry.uploads import service as uploads
from registry.uploads.schemas import DirectComplete, DirectPartUrl, DirectStart, DirectStartRead

router = authenticated_router(prefix="/api/v1/uploads", tags=["uploads"])

DirectIdPath = Annotated[str, Path(pattern=r"^d[0-9a-f]{32}$", description="Direct upload id.")]


@router.post(
    "/{upload_id}/direct",
    status_code=status.HTTP_201_CREATED,
    response_model=DirectStartRead,
    responses=responses(
        UploadNotFound,
        UploadStateConflict,
        DirectUploadUnsupported,
        ForbiddenFile,
        InvalidDigest,
        PayloadTooLarge,
        PolicyDenied,
        BadRequest,
        InvalidPartList,
    ),
)
def start_direct(
    upload_id: uuid.UUID, body: DirectStart, slow: SlowWriteDep, store: StoreDep
) -> object:
    """Start a direct upload of one file: presigned part URLs for a key the server picks."""
    replayed = slow.replay(body)
    if replayed is not None:
        return replayed
    storage = slow.settings.storage
    with slow.reading() as (session, actor):
        target = direct.check_direct(
            session,
            actor=actor,
            store=store,
            upload_id=upload_id,
            adapter=body.adapter,
            name=body.name,
            size=body.size,
            digest=body.digest,
            max_bytes=storage.max_upload_bytes,
        )
    knobs = slow.settings.direct_uploads
    started = direct.start_direct(
        store, target, part_size=knobs.part_bytes, url_ttl_s=knobs.url_ttl_s
    )
    expires_at = datetime.now(UTC) + timedelta(seconds=knobs.url_ttl_s)

    def produce(session: DbSession) -> DirectStartRead:
        actor.audit(
            session,
            "upload.direct.start",
            f"upload:{upload_id}",
            after={"file": target.name, "size": target.size, "adapter": body.adapter},
        )
        return DirectStartRead(
            id=started.key.rpartition("/")[2],
            s3_upload_id=started.upload_id,
            part_bytes=started.part_size,
            parts=[DirectPartUrl(part_number=n, url=u) for n, u in enumerate(started.urls, 1)],
            expires_at=expires_at,
        )

    return slow.commit(body, actor, produce, status_code=201)


@router.post(
    "/{upload_id}/direct/{direct_id}/complete",
    status_code=status.HTTP_201_CREATED,
    response_model=FileRead,
    responses=responses(
        UploadNotFound, UploadStateConflict, DirectUploadUnsupported, ForbiddenFile, InvalidPartList
    ),
)
async def complete_direct(
    upload_id: uuid.UUID,
    direct_id: DirectIdPath,
    body: DirectComplete,
    slow: SlowWriteDep,
    store: StoreDep,
) -> object:
    """Complete a direct upload with its parts' ETags and record the file in the session (with
    its declared digest, which the server checks after registration)."""
    replayed = await run_in_threadpool(slow.replay, body)
    if replayed is not None:
        return replayed

    def check() -> tuple[str, Actor]:
        with slow.reading() as (session, actor):
            upload, _files = uploads.get_upload(
                session, principal=slow.principal, upload_id=upload_id
            )
            uploads.require_open(upload)
            return upload.purpose, actor

    purpose, actor = await run_in_threadpool(check)
    done = await run_in_threadpool(
        lambda: direct.complete_direct(
            store,
            upload_id=upload_id,
            purpose=purpose,
            token=direct_id,
            s3_upload_id=body.s3_upload_id,
            parts=[(p.part_number, p.etag) for p in body.parts],
        )
    )
    target, staged = direct.staged_of(done)

    def record() -> object:
        def produce(session: DbSession) -> FileRead:
            recorded = uploads.record_file(
                session, principal=slow.principal, target=target, staged=staged
            )
            row = recorded.row
            superseded.extend(recorded.superseded)
            return FileRead(name=row.name, digest=f"sha256:{row.digest}", size=row.size)

        superseded: list[str] = []
        try:
            answer = slow.commit(body, actor, produce, status_code=201)
        except BaseException:
            uploads.drop_staged(store, [staged.key])
            raise
        uploads.drop_staged(store, superseded)
        return answer

    return await run_in_threadpool(record)
