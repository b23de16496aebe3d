"""Downloads: a version's files, streamed from the store with their digest in the headers.

The client re-hashes while writing and refuses a mismatch (exit code 8): verification is the
client's job too (OCI distribution's rule).
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import StreamingResponse

from registry.api.deps import PrincipalDep, StoreDep, short_read
from registry.api.params import AdapterPath, NamespacePath, SelectorPath, VersionFilePath
from registry.api.routes._common import (
    VERSION_NOT_FOUND,
    authenticated_router,
    blob_response,
    responses,
    version_ref,
)
from registry.catalog import files
from registry.errors import (
    BlobNotFound,
    RangeNotSatisfiable,
    VersionFailedVerification,
    VersionFileNotFound,
    VersionVerifying,
)

router = authenticated_router(prefix="/api/v1/adapters", tags=["adapters"])


@router.get(
    "/{namespace}/{name}/versions/{selector}/files/{file_name}",
    response_class=StreamingResponse,
    responses=responses(
        *VERSION_NOT_FOUND,
        VersionFileNotFound,
        BlobNotFound,
        RangeNotSatisfiable,
        VersionVerifying,
        VersionFailedVerification,
    ),
)
def download_file(
    namespace: NamespacePath,
    name: AdapterPath,
    selector: SelectorPath,
    file_name: VersionFilePath,
    request: Request,
    principal: PrincipalDep,
    store: StoreDep,
) -> StreamingResponse:
    """Stream one file of a version (constant memory, straight from the artifact store). One
    ``Range: bytes=...`` is answered ``206`` (resuming a download); a malformed or
    out-of-file range is ``416 range_not_satisfiable``; 409 while a direct upload's bytes are
    being verified, or after they failed verification."""
    with short_read(request, principal) as (session, actor):
        found = files.get_version_file(
            session, actor=actor, ref=version_ref(namespace, name, selector), name=file_name
        )
    headers = request.headers
    return blob_response(
        store, found.digest, found.name, headers.get("range"), headers.get("if-range")
    )
