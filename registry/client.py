"""A small typed HTTP client of the registry API (sync ``httpx``), used by the CLI.

Errors: every non-2xx answer becomes :class:`ClientError` with the server's stable ``code``,
``detail`` and ``context`` (the ``{"error", "detail", "context"}`` body). A refused connection,
a timeout or a gateway without a registry body is ``server_unavailable``; a downloaded file
whose bytes do not match its digest is ``integrity_failure``.

Retries: idempotent requests (GET, PUT of an upload file, POST carrying an ``Idempotency-Key``)
are retried on connection errors, 503 and ``idempotency_key_in_flight`` with bounded exponential
backoff. Every mutating POST sends an ``Idempotency-Key``: one uuid4 per call, reused across its
retries, so a retried registration is answered with the first answer instead of twice.

Transfers stream in 1 MiB chunks: uploads hash a file in a first pass (``X-Content-Digest``) and
send it in a second; downloads hash while writing into a temporary file next to the target and
rename it into place only when the digest matches.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from registry import __version__

CHUNK_BYTES = 1024 * 1024
MAX_ATTEMPTS = 5
BACKOFF_BASE_S = 0.25
BACKOFF_CAP_S = 4.0
RETRY_AFTER_CAP_S = 10.0
DEFAULT_TIMEOUT_S = 60.0

JSON = dict[str, Any]

_STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    409: "conflict",
    412: "conflict",
    413: "payload_too_large",
    422: "invalid_request",
    502: "server_unavailable",
    503: "server_unavailable",
    504: "server_unavailable",
}


class ClientError(Exception):
    """An error answer of the registry (or a local failure with a stable ``code``).

    ``status`` is the HTTP status, 0 when no answer came (or the check was local).
    """

    def __init__(
        self, code: str, status: int, detail: str, context: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.status = status
        self.detail = detail
        self.context: dict[str, Any] = dict(context or {})

    def to_body(self) -> JSON:
        return {"error": self.code, "detail": self.detail, "context": self.context}


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (constant memory)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def version_digest(files: Sequence[Mapping[str, Any]]) -> str:
    """The version digest of a file list: sha256 of the canonical ``[{digest, name, size}]``
    manifest sorted by name (the server's definition, recomputed to verify a listing)."""
    manifest = sorted(
        (
            {"digest": str(f["digest"]), "name": str(f["name"]), "size": int(f["size"])}
            for f in files
        ),
        key=lambda f: (f["name"], f["digest"], f["size"]),
    )
    raw = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def split_ref(ref: str) -> tuple[str, str, str]:
    """``NS/NAME[@vN|@latest|@sha256:<hex>]`` → (namespace, name, selector); the server checks
    the parts themselves."""
    path, sep, selector = ref.partition("@")
    namespace, slash, name = path.partition("/")
    if not slash or not namespace or not name or "/" in name or (sep and not selector):
        raise ClientError(
            "invalid_reference",
            0,
            "adapter reference must be NS/NAME[@vN|@latest|@sha256:<hex>]",
            {"value": ref[:200]},
        )
    return namespace, name, selector or "latest"


def _seg(value: str, safe: str = "") -> str:
    return quote(value, safe=safe)


def _read_file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            yield chunk


def _file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _safe_file_name(name: str) -> bool:
    return (
        bool(name)
        and name not in (".", "..")
        and "/" not in name
        and "\\" not in name
        and "\x00" not in name
        and Path(name).name == name
    )


class RegistryClient:
    """Typed calls of the ``/api/v1`` HTTP API."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        *,
        max_attempts: int = MAX_ATTEMPTS,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {"User-Agent": f"adapter-registry-cli/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base_url = base_url.rstrip("/")
        self.max_attempts = max(1, max_attempts)
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- transport -----------------------------------------------------------------------

    def _backoff(self, attempt: int, response: httpx.Response | None) -> None:
        delay = min(BACKOFF_BASE_S * 2**attempt, BACKOFF_CAP_S)
        if response is not None:
            retry_after = response.headers.get("Retry-After", "")
            if retry_after.isdigit():
                delay = min(float(retry_after), RETRY_AFTER_CAP_S)
        self._sleep(delay * (0.5 + random.random() / 2))  # jitter, not crypto

    @staticmethod
    def _error(response: httpx.Response) -> ClientError:
        body: Any = None
        try:
            body = response.json()
        except (ValueError, UnicodeDecodeError):
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            context = body.get("context")
            return ClientError(
                body["error"],
                response.status_code,
                str(body.get("detail", "")),
                context if isinstance(context, dict) else {},
            )
        status = response.status_code
        code = _STATUS_CODES.get(status, "internal" if status >= 500 else "http_error")
        text = response.text[:500] if response.content else response.reason_phrase
        return ClientError(code, status, text or f"HTTP {status}", {"status": status})

    @staticmethod
    def _retryable(response: httpx.Response) -> bool:
        if response.status_code == 503:
            return True
        if response.status_code == 409:
            try:
                body = response.json()
            except (ValueError, UnicodeDecodeError):
                return False
            return isinstance(body, dict) and body.get("error") == "idempotency_key_in_flight"
        return False

    def _unavailable(self, exc: httpx.TransportError) -> ClientError:
        kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "unreachable"
        return ClientError(
            "server_unavailable",
            0,
            f"registry server at {self.base_url} {kind}: {exc}",
            {"server": self.base_url},
        )

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        content: Callable[[], Iterator[bytes]] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        """Send one request, retrying idempotent ones; return a 2xx response or raise."""
        hdrs = dict(headers or {})
        if idempotency_key is not None:
            hdrs["Idempotency-Key"] = idempotency_key
        retry = method in ("GET", "HEAD", "PUT") or idempotency_key is not None
        query = {k: v for k, v in (params or {}).items() if v is not None}
        attempts = self.max_attempts if retry else 1
        for attempt in range(attempts):
            try:
                response = self._http.request(
                    method,
                    path,
                    params=query or None,
                    json=json_body,
                    content=content() if content is not None else None,
                    headers=hdrs,
                )
            except httpx.TransportError as exc:
                if attempt + 1 >= attempts:
                    raise self._unavailable(exc) from exc
                self._backoff(attempt, None)
                continue
            if response.is_success:
                return response
            if attempt + 1 < attempts and self._retryable(response):
                self._backoff(attempt, response)
                continue
            raise self._error(response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise ClientError(
                "bad_response", response.status_code, "the server did not answer JSON"
            ) from exc

    @staticmethod
    def _key(idempotency_key: str | None) -> str:
        return idempotency_key or str(uuid.uuid4())

    @staticmethod
    def _page(limit: int | None, page_token: str | None) -> dict[str, Any]:
        return {"limit": limit, "page_token": page_token}

    @staticmethod
    def _version_path(ref: str) -> str:
        namespace, name, selector = split_ref(ref)
        return f"/api/v1/adapters/{_seg(namespace)}/{_seg(name)}/versions/{_seg(selector, ':')}"

    # --- health ----------------------------------------------------------------------------

    def health(self) -> JSON:
        """``GET /healthz``."""
        result: JSON = self._json("GET", "/healthz")
        return result

    # --- namespaces ------------------------------------------------------------------------

    def create_namespace(
        self, name: str, description: str = "", *, idempotency_key: str | None = None
    ) -> JSON:
        result: JSON = self._json(
            "POST",
            "/api/v1/namespaces",
            json_body={"name": name, "description": description},
            idempotency_key=self._key(idempotency_key),
        )
        return result

    def list_namespaces(self, *, limit: int | None = None, page_token: str | None = None) -> JSON:
        result: JSON = self._json("GET", "/api/v1/namespaces", params=self._page(limit, page_token))
        return result

    # --- base models -----------------------------------------------------------------------

    def register_base_model(
        self, body: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> JSON:
        """``POST /api/v1/base-models`` with name, revision, config, tensors manifest, ..."""
        result: JSON = self._json(
            "POST",
            "/api/v1/base-models",
            json_body=dict(body),
            idempotency_key=self._key(idempotency_key),
        )
        return result

    def list_base_models(self, *, limit: int | None = None, page_token: str | None = None) -> JSON:
        result: JSON = self._json(
            "GET", "/api/v1/base-models", params=self._page(limit, page_token)
        )
        return result

    def get_base_model(self, name: str, revision: str) -> JSON:
        result: JSON = self._json(
            "GET", f"/api/v1/base-models/{_seg(name, '/')}/revisions/{_seg(revision)}"
        )
        return result

    def get_base_manifest(self, name: str, revision: str) -> JSON:
        """The weights manifest ``{"schema_version", "config", "tensors"}`` of a base."""
        result: JSON = self._json(
            "GET", f"/api/v1/base-models/{_seg(name, '/')}/revisions/{_seg(revision)}/manifest"
        )
        return result

    # --- uploads ---------------------------------------------------------------------------

    def create_upload(
        self, *, purpose: str | None = None, idempotency_key: str | None = None
    ) -> JSON:
        """Open an upload session; ``purpose="base_model"`` for base checkpoint files."""
        body = {"purpose": purpose} if purpose is not None else {}
        result: JSON = self._json(
            "POST", "/api/v1/uploads", json_body=body, idempotency_key=self._key(idempotency_key)
        )
        return result

    def put_file(
        self, upload_id: str, path: Path, *, name: str | None = None, digest_hex: str | None = None
    ) -> JSON:
        """Stream one file into an upload session (constant memory); the server checks the
        ``X-Content-Digest`` claim computed here in a first pass."""
        digest_hex = digest_hex or sha256_file(path)
        size = path.stat().st_size
        result: JSON = self._json(
            "PUT",
            f"/api/v1/uploads/{_seg(upload_id)}/files/{_seg(name or path.name)}",
            content=lambda: _read_file_chunks(path),
            headers={
                "X-Content-Digest": f"sha256:{digest_hex}",
                "Content-Type": "application/octet-stream",
                "Content-Length": str(size),
            },
        )
        return result

    def upload_files(self, paths: Sequence[Path], *, purpose: str | None = None) -> str:
        """Open a session, PUT every file; return the session id."""
        upload = self.create_upload(purpose=purpose)
        upload_id = str(upload["id"])
        for path in paths:
            self.put_file(upload_id, path)
        return upload_id

    # --- adapters --------------------------------------------------------------------------

    def list_adapters(
        self,
        *,
        namespace: str | None = None,
        filters: Mapping[str, Any] | None = None,
        limit: int | None = None,
        page_token: str | None = None,
    ) -> JSON:
        """Adapters; filters (peft_type, base, rank, state, tag) keep those with a match."""
        result: JSON = self._json(
            "GET",
            "/api/v1/adapters",
            params={"namespace": namespace, **(filters or {}), **self._page(limit, page_token)},
        )
        return result

    def get_adapter(self, namespace: str, name: str) -> JSON:
        result: JSON = self._json("GET", f"/api/v1/adapters/{_seg(namespace)}/{_seg(name)}")
        return result

    def register_version(
        self,
        namespace: str,
        name: str,
        body: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> JSON:
        """``POST .../versions``: validate an upload session (``upload_id``) or an allow-listed
        ``source_uri`` and register it as the next version."""
        result: JSON = self._json(
            "POST",
            f"/api/v1/adapters/{_seg(namespace)}/{_seg(name)}/versions",
            json_body=dict(body),
            idempotency_key=self._key(idempotency_key),
        )
        return result

    def push(
        self, namespace: str, name: str, paths: Sequence[Path], body: Mapping[str, Any]
    ) -> JSON:
        """Upload ``paths`` and register them as the next version of ``namespace/name``."""
        upload_id = self.upload_files(paths)
        return self.register_version(namespace, name, {**body, "upload_id": upload_id})

    def list_versions(
        self,
        namespace: str,
        name: str,
        *,
        filters: Mapping[str, Any] | None = None,
        limit: int | None = None,
        page_token: str | None = None,
    ) -> JSON:
        """Versions newest first; filters: peft_type, base, rank, state, tag."""
        result: JSON = self._json(
            "GET",
            f"/api/v1/adapters/{_seg(namespace)}/{_seg(name)}/versions",
            params={**(filters or {}), **self._page(limit, page_token)},
        )
        return result

    def get_version(self, ref: str) -> JSON:
        result: JSON = self._json("GET", self._version_path(ref))
        return result

    def lineage(self, ref: str, *, descendants: bool = False) -> list[JSON]:
        result: list[JSON] = self._json(
            "GET",
            self._version_path(ref) + "/lineage",
            params={"descendants": "true" if descendants else None},
        )
        return result

    def update_tags(
        self,
        ref: str,
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        idempotency_key: str | None = None,
    ) -> JSON:
        result: JSON = self._json(
            "POST",
            self._version_path(ref) + "/tags",
            json_body={"add": list(add), "remove": list(remove)},
            idempotency_key=self._key(idempotency_key),
        )
        return result

    def archive(self, ref: str, *, reason: str = "", idempotency_key: str | None = None) -> JSON:
        result: JSON = self._json(
            "POST",
            self._version_path(ref) + "/archive",
            json_body={"reason": reason},
            idempotency_key=self._key(idempotency_key),
        )
        return result

    # --- downloads -------------------------------------------------------------------------

    def download_file(
        self, ref: str, name: str, dest_dir: Path, *, digest: str, size: int | None = None
    ) -> Path:
        """Stream one file of a version into ``dest_dir/name``, verified against ``digest`` (from
        the version listing) and the response's ``X-Content-Digest``; atomic rename."""
        if not _safe_file_name(name):
            raise ClientError(
                "integrity_failure",
                0,
                "the server listed an unsafe file name",
                {"file": name[:200]},
            )
        url = self._version_path(ref) + f"/files/{_seg(name)}"
        for attempt in range(self.max_attempts):
            fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{name}.", suffix=".part")
            tmp = Path(tmp_name)
            try:
                try:
                    actual, header = self._stream_to(url, fd)
                except httpx.TransportError as exc:
                    if attempt + 1 >= self.max_attempts:
                        raise self._unavailable(exc) from exc
                    self._backoff(attempt, None)
                    continue
                except _Retry as retry:
                    if attempt + 1 >= self.max_attempts:
                        raise self._error(retry.response) from None
                    self._backoff(attempt, retry.response)
                    continue
                written = tmp.stat().st_size
                if (
                    actual != digest
                    or (header is not None and header != digest)
                    or (size is not None and written != size)
                ):
                    raise ClientError(
                        "integrity_failure",
                        0,
                        "downloaded bytes do not match the version's digest",
                        {
                            "file": name,
                            "expected": digest,
                            "actual": actual,
                            "header": header,
                            "expected_size": size,
                            "size": written,
                        },
                    )
                os.chmod(tmp, _file_mode())  # mkstemp creates 0600; use the umask like open()
                os.replace(tmp, dest_dir / name)
                return dest_dir / name
            finally:
                tmp.unlink(missing_ok=True)
        raise AssertionError("unreachable")  # pragma: no cover

    def _stream_to(self, url: str, fd: int) -> tuple[str, str | None]:
        """GET ``url`` into the open file ``fd`` (closed on return); → (sha256:hex, header)."""
        hasher = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, self._http.stream("GET", url) as response:
            if not response.is_success:
                response.read()
                if self._retryable(response):
                    raise _Retry(response)
                raise self._error(response)
            for chunk in response.iter_bytes(CHUNK_BYTES):
                hasher.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
            return "sha256:" + hasher.hexdigest(), response.headers.get("X-Content-Digest")

    def pull(self, ref: str, dest: Path, *, force: bool = False) -> JSON:
        """Write every file of a version into ``dest``, byte for byte, verified.

        Refuses an existing non-empty directory (``target_not_empty``) unless ``force``.
        Returns ``{"ref", "digest", "dir", "files": [{name, digest, size}]}``.
        """
        if dest.exists() and not dest.is_dir():
            raise ClientError(
                "target_not_empty", 0, "target exists and is not a directory", {"dir": str(dest)}
            )
        if dest.is_dir() and any(dest.iterdir()) and not force:
            raise ClientError(
                "target_not_empty",
                0,
                "target directory is not empty (use --force to overwrite)",
                {"dir": str(dest)},
            )
        version = self.get_version(ref)
        files: list[JSON] = list(version.get("files", []))
        if version_digest(files) != version.get("digest"):
            raise ClientError(
                "integrity_failure",
                0,
                "the version's file list does not match its digest",
                {"ref": version.get("ref"), "digest": version.get("digest")},
            )
        pinned = f"{version['namespace']}/{version['adapter']}@v{version['version']}"
        dest.mkdir(parents=True, exist_ok=True)
        for f in files:
            self.download_file(
                pinned, str(f["name"]), dest, digest=str(f["digest"]), size=int(f["size"])
            )
        return {
            "ref": version.get("ref", pinned),
            "digest": version["digest"],
            "dir": str(dest),
            "files": files,
        }

    # --- evaluations -----------------------------------------------------------------------

    def record_evaluation(
        self, ref: str, body: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> JSON:
        result: JSON = self._json(
            "POST",
            self._version_path(ref) + "/evaluations",
            json_body=dict(body),
            idempotency_key=self._key(idempotency_key),
        )
        return result

    def list_evaluations(
        self,
        ref: str,
        *,
        suite: str | None = None,
        limit: int | None = None,
        page_token: str | None = None,
    ) -> JSON:
        result: JSON = self._json(
            "GET",
            self._version_path(ref) + "/evaluations",
            params={"suite": suite, **self._page(limit, page_token)},
        )
        return result

    def compare_evaluations(self, a: str, b: str) -> JSON:
        split_ref(a)
        split_ref(b)
        result: JSON = self._json("GET", "/api/v1/evaluations/compare", params={"a": a, "b": b})
        return result


class _Retry(Exception):
    """A retryable error answer met while streaming a download."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response
