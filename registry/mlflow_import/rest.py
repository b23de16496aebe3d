"""A bounded client of an MLflow tracking server's REST API, over plain ``httpx``.

The registry never imports ``mlflow``: it reads JSON answers of ``/api/2.0/mlflow/...`` and
streams artifact bytes from ``/get-artifact`` (runs) or the logged-model artifact route. Every
call has a connect and read timeout, every JSON answer a size cap, every download a per-file
and per-import byte budget; redirects are not followed (an allow-listed server must not send
the registry elsewhere).

Failures map onto stable codes: a 404 / ``RESOURCE_DOES_NOT_EXIST`` is
``mlflow_source_not_found``; refused connections, timeouts, 5xx answers, oversize or
non-JSON answers are ``mlflow_unavailable``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from registry.errors import MlflowSourceNotFound, MlflowUnavailable
from registry.mlflow_settings import MlflowSettings

API = "/api/2.0/mlflow"
CHUNK_BYTES = 1024 * 1024
_NOT_FOUND_CODES = {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"}


@dataclass(frozen=True, slots=True)
class ArtifactEntry:
    path: str  # relative to the artifact root, "/"-separated
    is_dir: bool
    size: int | None


class MlflowRest:
    """One tracking server; use as a context manager (closes its connection pool)."""

    def __init__(self, server: str, limits: MlflowSettings) -> None:
        self.server = server
        self.limits = limits
        self.downloaded = 0
        self._http = httpx.Client(
            base_url=server,
            timeout=httpx.Timeout(
                limits.read_timeout_s, connect=limits.connect_timeout_s, pool=limits.read_timeout_s
            ),
            follow_redirects=False,
            headers={"User-Agent": "adapter-registry-mlflow-import"},
        )

    def __enter__(self) -> MlflowRest:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    # --- JSON ----------------------------------------------------------------------------

    def get_json(
        self, path: str, params: Mapping[str, str], *, what: str, api: str = API
    ) -> dict[str, Any]:
        """``GET {api}{path}?params`` as a JSON object, read up to ``max_json_bytes``."""
        try:
            with self._http.stream("GET", api + path, params=dict(params)) as response:
                body = self._read_capped(response, self.limits.max_json_bytes)
                status = response.status_code
        except httpx.HTTPError as exc:
            raise _unavailable(type(exc).__name__, path) from exc
        data = _parse(body)
        if status >= 400:
            code = data.get("error_code") if isinstance(data, dict) else None
            if status == 404 or code in _NOT_FOUND_CODES:
                raise MlflowSourceNotFound(f"MLflow has no such {what}", context={"what": what})
            raise _unavailable(f"http_{status}", path)
        if not isinstance(data, dict):
            raise _unavailable("not_json", path)
        return data

    def _read_capped(self, response: httpx.Response, cap: int) -> bytes:
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise _unavailable("answer_too_large", str(response.url.path))
        out = bytearray()
        for chunk in response.iter_bytes(CHUNK_BYTES):
            out += chunk
            if len(out) > cap:
                raise _unavailable("answer_too_large", str(response.url.path))
        return bytes(out)

    # --- artifacts -------------------------------------------------------------------------

    def list_dir(
        self, *, run_id: str | None, model_id: str | None, path: str
    ) -> list[ArtifactEntry]:
        """The entries directly under ``path`` of a run's or a logged model's artifacts."""
        if model_id is not None:
            data = self.get_json(
                f"/logged-models/{model_id}/artifacts/directories",
                {"artifact_directory_path": path} if path else {},
                what="artifact folder",
            )
        else:
            assert run_id is not None
            params = {"run_id": run_id, **({"path": path} if path else {})}
            data = self.get_json("/artifacts/list", params, what="artifact folder")
        entries = []
        for item in data.get("files") or []:
            if not isinstance(item, dict) or not isinstance(item.get("path"), str):
                raise _unavailable("bad_listing", path)
            size = item.get("file_size")
            entries.append(
                ArtifactEntry(
                    path=item["path"],
                    is_dir=bool(item.get("is_dir")),
                    size=int(size) if isinstance(size, int | str) and str(size).isdigit() else None,
                )
            )
        return entries

    def download(
        self, *, run_id: str | None, model_id: str | None, path: str, size: int | None
    ) -> Iterator[bytes]:
        """Stream one artifact file, within the per-file and per-import byte budgets."""
        limit = self.limits.max_file_bytes
        if size is not None and size > limit:
            raise _unavailable("file_too_large", path)
        if model_id is not None:
            url = f"/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files"
            params = {"artifact_file_path": path}
        else:
            assert run_id is not None
            url, params = "/get-artifact", {"run_id": run_id, "path": path}
        try:
            with self._http.stream("GET", url, params=params) as response:
                if response.status_code == 404:
                    raise MlflowSourceNotFound(
                        "MLflow has no such artifact", context={"path": path}
                    )
                if response.status_code >= 400:
                    raise _unavailable(f"http_{response.status_code}", path)
                received = 0
                for chunk in response.iter_bytes(CHUNK_BYTES):
                    received += len(chunk)
                    self.downloaded += len(chunk)
                    if received > limit:
                        raise _unavailable("file_too_large", path)
                    if self.downloaded > self.limits.max_total_bytes:
                        raise _unavailable("import_too_large", path)
                    yield chunk
        except httpx.HTTPError as exc:
            raise _unavailable(type(exc).__name__, path) from exc


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body) if body else {}
    except (ValueError, UnicodeDecodeError):
        return None


def _unavailable(reason: str, path: str) -> MlflowUnavailable:
    return MlflowUnavailable(
        "the MLflow tracking server did not answer as expected",
        context={"reason": reason, "path": path[:300]},
    )
