"""File transfers: streamed uploads (and ``push``) and verified, atomic downloads (and ``pull``).

Uploads hash a file in a first pass (``X-Content-Digest``) and send it in a second; downloads hash
while writing into a partial file next to the target and rename it into place only when the
digest matches; a rerun skips complete files and resumes partial ones
(:mod:`registry.client._download`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx

from registry.client._download import Partial, check_target, is_complete, partial_path
from registry.client._endpoints import _Endpoints
from registry.client._errors import JSON, ClientError
from registry.client._progress import TransferProgress, counted
from registry.client._refs import (
    file_mode,
    read_file_chunks,
    safe_file_name,
    seg,
    sha256_file,
    version_digest,
)

#: Files a base registration uploads: the config, the index and the safetensors weights.
BASE_WEIGHT_FILES = re.compile(
    r"^(config\.json|model\.safetensors\.index\.json|model(-[0-9]{5}-of-[0-9]{5})?\.safetensors)$"
)


class _Retry(Exception):
    """A retryable error answer met while streaming a download."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class _Transfers(_Endpoints):
    """Upload sessions, ``push``, streamed verified downloads and ``pull``."""

    #: Told the bytes of every streamed upload and download (the CLI's progress bars).
    progress: TransferProgress | None = None

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
            f"/api/v1/uploads/{seg(upload_id)}/files/{seg(name or path.name)}",
            content=lambda: counted(
                read_file_chunks(path), self.progress, f"upload {name or path.name}", size
            ),
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

    def push(
        self, namespace: str, name: str, paths: Sequence[Path], body: Mapping[str, Any]
    ) -> JSON:
        """Upload ``paths`` and register them as the next version of ``namespace/name``."""
        upload_id = self.upload_files(paths)
        return self.register_version(namespace, name, {**body, "upload_id": upload_id})

    def push_base(
        self,
        name: str,
        revision: str,
        directory: Path,
        *,
        upload_weights: bool = False,
        license: str | None = None,
        weights_uri: str | None = None,
        parents: Sequence[Mapping[str, Any]] = (),
    ) -> JSON:
        """Register ``name@revision`` from a local checkpoint directory: its weights manifest
        (config.json and the safetensors headers, never the weights data), and with
        ``upload_weights`` the config, index and safetensors files themselves."""
        from registry.validation.manifest import read_base_dir

        manifest = read_base_dir(directory).to_json()
        body: dict[str, Any] = {
            "name": name,
            "revision": revision,
            "config": manifest["config"],
            "tensors": manifest["tensors"],
        }
        tokenizer = directory / "tokenizer.json"
        if tokenizer.is_file():
            body["tokenizer_digest"] = "sha256:" + sha256_file(tokenizer)
        optional = {"license": license, "weights_uri": weights_uri}
        body.update({k: v for k, v in optional.items() if v is not None})
        if parents:
            body["parents"] = [dict(p) for p in parents]
        if upload_weights:
            files = sorted(
                p
                for p in directory.iterdir()
                if p.is_file() and BASE_WEIGHT_FILES.fullmatch(p.name)
            )
            body["upload_id"] = self.upload_files(files, purpose="base_model")
        return self.register_base_model(body)

    # --- downloads -------------------------------------------------------------------------

    def download_file(
        self, ref: str, name: str, dest_dir: Path, *, digest: str, size: int | None = None
    ) -> Path:
        """Stream one file of a version into ``dest_dir/name``, verified against ``digest`` (from
        the version listing) and the response's ``X-Content-Digest``; atomic rename."""
        path, _ = self._download(self._version_path(ref), name, dest_dir, digest=digest, size=size)
        return path

    def _download(
        self, prefix: str, name: str, dest_dir: Path, *, digest: str, size: int | None
    ) -> tuple[Path, str]:
        """GET ``prefix/files/name`` into ``dest_dir/name``, verified, retried, renamed; resumed
        from its partial file (``registry.client._download``). → (path, ``downloaded`` |
        ``resumed`` | ``skipped``)."""
        if not safe_file_name(name):
            raise ClientError(
                "integrity_failure",
                0,
                "the server listed an unsafe file name",
                {"file": name[:200]},
            )
        final = dest_dir / name
        if is_complete(final, digest, size):
            return final, "skipped"
        url = prefix + f"/files/{seg(name)}"
        part = partial_path(dest_dir, name, digest)
        resumed = False
        for attempt in range(self.max_attempts):
            partial = Partial.open(part, size)
            resumed = resumed or partial.offset > 0
            try:
                header = self._stream_to(url, partial, size)
            except httpx.TransportError as exc:
                if attempt + 1 >= self.max_attempts:
                    raise self._unavailable(exc) from exc
                self._backoff(attempt, None)
                continue  # the next attempt resumes from what arrived
            except _Retry as retry:
                if attempt + 1 >= self.max_attempts:
                    raise self._error(retry.response) from None
                self._backoff(attempt, retry.response)
                continue
            finally:
                partial.close()
            try:
                _verify(name, partial.offset, digest, size, partial.digest, header)
            except ClientError:
                part.unlink(missing_ok=True)  # wrong bytes: the next run starts afresh
                raise
            os.chmod(part, file_mode())  # created 0600; use the umask like open()
            os.replace(part, final)
            return final, "resumed" if resumed else "downloaded"
        raise AssertionError("unreachable")  # pragma: no cover

    def _stream_to(self, url: str, partial: Partial, size: int | None) -> str | None:
        """GET ``url`` onto the end of ``partial`` (from its offset with a ``Range`` when it
        holds bytes already) → the ``X-Content-Digest`` header."""
        offset = partial.offset
        if size is not None and offset == size:
            return None  # complete already: only the digest check is left
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        with self._http.stream("GET", url, headers=headers) as response:
            if response.status_code == 416 and offset:
                response.read()
                partial.restart()  # the range is refused: fetch the whole file
                return self._stream_to(url, partial, size)
            if not response.is_success:
                response.read()
                if self._retryable(response):
                    raise _Retry(response)
                raise self._error(response)
            expected = f"bytes {offset}-"
            if offset and not (
                response.status_code == 206
                and response.headers.get("Content-Range", "").startswith(expected)
            ):
                partial.restart()  # the server sent the whole file (no range support)
            length = response.headers.get("Content-Length")
            # As they arrive (not re-buffered to a chunk size): what came before a broken
            # connection is on disk for the next attempt to resume from.
            chunks = counted(
                response.iter_bytes(),
                self.progress,
                "download " + unquote(url.rsplit("/", 1)[-1]),
                int(length) if length is not None and length.isdigit() else None,
            )
            for chunk in chunks:
                partial.write(chunk)
            header: str | None = response.headers.get("X-Content-Digest")
            return header

    def pull(
        self,
        ref: str,
        dest: Path,
        *,
        force: bool = False,
        for_serving: bool = False,
        base_name: str | None = None,
    ) -> JSON:
        """Write every file of a version into ``dest``, byte for byte, verified.

        Refuses an existing non-empty directory (``target_not_empty``) unless ``force``.
        With ``for_serving``, after verification ``adapter_config.json`` gets the canonical
        ``base_model_name_or_path`` (the registered base name, or ``base_name`` — the name the
        engine serves the base under) and its ``revision``, which vLLM's filesystem resolver
        and LoRAX compare with the served model; ``registry-pull.json`` then records the
        original digests. Returns ``{"ref", "digest", "dir", "files": [{name, digest, size}]}``
        (+ ``"serving": {"base_model_name_or_path", "revision"}`` with ``for_serving``).
        """
        version = self.get_version(ref)
        files: list[JSON] = list(version.get("files", []))
        if version_digest(files) != version.get("digest"):
            raise ClientError(
                "integrity_failure",
                0,
                "the version's file list does not match its digest",
                {"ref": version.get("ref"), "digest": version.get("digest")},
            )
        check_target(dest, force, {str(f["name"]) for f in files})
        pinned = f"{version['namespace']}/{version['adapter']}@v{version['version']}"
        dest.mkdir(parents=True, exist_ok=True)
        how = {
            str(f["name"]): self._download(
                self._version_path(pinned),
                str(f["name"]),
                dest,
                digest=str(f["digest"]),
                size=int(f["size"]),
            )[1]
            for f in files
        }
        result: JSON = {
            "ref": version.get("ref", pinned),
            "digest": version["digest"],
            "dir": str(dest),
            "files": files,
            **_outcome(how),
        }
        if for_serving:
            result["serving"] = _canonical_base(dest, version, result, base_name)
        return result

    def pull_base(self, ref: str, to: Path, *, force: bool = False) -> JSON:
        """Write every stored file of a base revision ``NAME@REV`` (registered with
        ``--upload-weights``) into ``to``, each verified against its listed digest. Refuses an
        existing non-empty directory unless ``force``, and a revision with no stored weights
        (``file_not_found``). Returns ``{"ref", "manifest_digest", "dir", "files"}``."""
        name, sep, revision = ref.rpartition("@")
        if not sep or not name or not revision:
            raise ClientError("invalid_reference", 0, "expected NAME@REVISION", {"ref": ref})
        version = self.get_base_model(name, revision)
        files: list[JSON] = list(version.get("files", []))
        if not any(str(f["name"]).endswith(".safetensors") for f in files):
            raise ClientError(
                "file_not_found",
                404,
                "this base revision has no stored weights (registered without --upload-weights)",
                {"base": ref},
            )
        check_target(to, force, {str(f["name"]) for f in files})
        to.mkdir(parents=True, exist_ok=True)
        prefix = f"/api/v1/base-models/{seg(name, '/')}/revisions/{seg(revision)}"
        how = {
            str(f["name"]): self._download(
                prefix, str(f["name"]), to, digest=str(f["digest"]), size=int(f["size"])
            )[1]
            for f in files
        }
        return {
            "ref": f"{name}@{revision}",
            "manifest_digest": version.get("manifest_digest"),
            "dir": str(to),
            "files": files,
            **_outcome(how),
        }


def _outcome(how: Mapping[str, str]) -> JSON:
    """Which files a rerun found complete (``skipped``) or continued (``resumed``)."""
    return {
        "skipped": sorted(n for n, h in how.items() if h == "skipped"),
        "resumed": sorted(n for n, h in how.items() if h == "resumed"),
    }


def _verify(
    name: str, written: int, digest: str, size: int | None, actual: str, header: str | None
) -> None:
    """The downloaded bytes are the listed ones (digest, header and size agree)."""
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


def _canonical_base(dest: Path, version: JSON, pulled: JSON, base_name: str | None) -> JSON:
    """Point ``adapter_config.json`` at the registered base (engines compare this name)."""
    name, _, revision = str(version.get("base", "")).partition("@")
    config_path = dest / "adapter_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = base_name or name
    config["revision"] = revision or None
    tmp = config_path.with_name(f".{config_path.name}.tmp")
    tmp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, config_path)
    record = {
        "ref": pulled["ref"],
        "digest": pulled["digest"],
        "files": pulled["files"],
        "rewritten": ["adapter_config.json"],
        "base": version.get("base"),
    }
    (dest / "registry-pull.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return {"base_model_name_or_path": config["base_model_name_or_path"], "revision": revision}
