"""Direct uploads: large files sent straight to the registry's S3 bucket through presigned
multipart part URLs (parallel parts), the registry never proxying their bytes.

The server picks the key, presigns one URL per part (short-lived, for that key and upload only)
and, after the push, hashes the stored object itself: the version is ``verifying`` until then,
and ``push`` waits for the verdict unless told not to. Presigned URLs are fetched with a
separate HTTP client that carries no registry credentials.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from registry.client._errors import JSON, ClientError
from registry.client._refs import CHUNK_BYTES, seg, sha256_file
from registry.client._transfer import _Transfers

#: Parts sent at once by one direct upload.
DEFAULT_PARALLEL_PARTS = 4
#: How often ``push`` asks whether a ``verifying`` version is done, and for how long at most.
VERIFY_POLL_S = 0.5
VERIFY_WAIT_S = 6 * 3600.0
_PART_ATTEMPTS = 3


def _part_chunks(fd: int, offset: int, length: int) -> Iterator[bytes]:
    end = offset + length
    while offset < end:
        chunk = os.pread(fd, min(CHUNK_BYTES, end - offset), offset)
        if not chunk:
            raise ClientError("integrity_failure", 0, "file shrank during the upload", {})
        offset += len(chunk)
        yield chunk


class _DirectUploads(_Transfers):
    """``put_file_direct`` and a ``push`` that uses it for large files when the server offers."""

    direct_parallel: int = DEFAULT_PARALLEL_PARTS

    def put_file_direct(
        self, upload_id: str, path: Path, *, adapter: str, digest_hex: str | None = None
    ) -> JSON:
        """Upload one file straight to the store: start (presigned part URLs), PUT the parts in
        parallel, complete. Returns the recorded file ``{name, digest, size}``."""
        digest_hex = digest_hex or sha256_file(path)
        size = path.stat().st_size
        base = f"/api/v1/uploads/{seg(upload_id)}/direct"
        started: JSON = self._json(
            "POST",
            base,
            json_body={
                "adapter": adapter,
                "name": path.name,
                "size": size,
                "digest": f"sha256:{digest_hex}",
            },
            idempotency_key=self._key(None),
        )
        part_bytes = int(started["part_bytes"])
        urls = [(int(p["part_number"]), str(p["url"])) for p in started["parts"]]
        fd = os.open(path, os.O_RDONLY)
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(300.0, connect=10.0)) as s3,
                ThreadPoolExecutor(max_workers=max(1, self.direct_parallel)) as pool,
            ):
                etags = list(pool.map(lambda p: self._put_part(s3, fd, size, part_bytes, *p), urls))
        finally:
            os.close(fd)
        result: JSON = self._json(
            "POST",
            f"{base}/{seg(str(started['id']))}/complete",
            json_body={
                "s3_upload_id": started["s3_upload_id"],
                "parts": [
                    {"part_number": n, "etag": e} for (n, _), e in zip(urls, etags, strict=True)
                ],
            },
            idempotency_key=self._key(None),
        )
        return result

    def _put_part(
        self, s3: httpx.Client, fd: int, size: int, part_bytes: int, number: int, url: str
    ) -> str:
        offset = (number - 1) * part_bytes
        length = max(0, min(part_bytes, size - offset))
        for attempt in range(_PART_ATTEMPTS):
            try:
                response = s3.put(
                    url,
                    content=_part_chunks(fd, offset, length),
                    headers={"Content-Length": str(length)},
                )
            except httpx.TransportError as exc:
                if attempt + 1 >= _PART_ATTEMPTS:
                    raise self._unavailable(exc) from exc
                self._backoff(attempt, None)
                continue
            if response.is_success and response.headers.get("ETag"):
                return str(response.headers["ETag"])
            if response.status_code < 500 or attempt + 1 >= _PART_ATTEMPTS:
                raise ClientError(
                    "direct_upload_failed",
                    response.status_code,
                    "the object store refused a part of a direct upload",
                    {"part": number, "status": response.status_code, "body": response.text[:300]},
                )
            self._backoff(attempt, None)
        raise AssertionError("unreachable")  # pragma: no cover

    def push(
        self,
        namespace: str,
        name: str,
        paths: Sequence[Path],
        body: Mapping[str, Any],
        *,
        direct: bool = True,
        wait: bool = True,
    ) -> JSON:
        """Upload ``paths`` and register them as the next version of ``namespace/name``.

        Files at least the server's direct-upload threshold go straight to the store when the
        server offers it (S3 backend) and ``direct``; the others through the API. A version
        registered from direct uploads is ``verifying``; with ``wait`` this returns once the
        server has checked it (``validated``, or ``quarantined`` with the reason)."""
        upload = self.create_upload()
        upload_id = str(upload["id"])
        offer = upload.get("direct") if direct else None
        for path in paths:
            if offer is not None and path.stat().st_size >= int(offer["threshold_bytes"]):
                self.put_file_direct(upload_id, path, adapter=f"{namespace}/{name}")
            else:
                self.put_file(upload_id, path)
        version = self.register_version(namespace, name, {**body, "upload_id": upload_id})
        if wait and version.get("state") == "verifying":
            return self.wait_verified(str(version["ref"]))
        return version

    def wait_verified(self, ref: str, *, timeout_s: float = VERIFY_WAIT_S) -> JSON:
        """Poll a ``verifying`` version until the server has checked its direct uploads."""
        deadline = time.monotonic() + timeout_s
        while True:
            version = self.get_version(ref)
            if version.get("state") != "verifying" or time.monotonic() >= deadline:
                return version
            self._sleep(VERIFY_POLL_S)
