"""Small helpers that drive the real HTTP API (no shortcuts around it): a ``TestClient`` or an
``httpx.Client`` on a live server."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from registry.settings import Settings
from registry.validation.manifest import read_base_dir


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def create_namespace(client: httpx.Client, name: str | None = None) -> str:
    name = name or unique("ns")
    r = client.post("/api/v1/namespaces", json={"name": name})
    assert r.status_code == 201, r.text
    return name


def register_base(
    client: httpx.Client, base_dir: Path, *, name: str | None = None, revision: str = "main"
) -> str:
    """Register a base from a local checkpoint dir (headers only); returns ``NAME@REV``."""
    name = name or unique("base")
    manifest = read_base_dir(base_dir).to_json()
    r = client.post(
        "/api/v1/base-models",
        json={
            "name": name,
            "revision": revision,
            "config": manifest["config"],
            "tensors": manifest["tensors"],
        },
    )
    assert r.status_code == 201, r.text
    return f"{name}@{revision}"


def open_upload(client: httpx.Client, purpose: str = "adapter") -> str:
    r = client.post("/api/v1/uploads", json={"purpose": purpose})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def staging_files(settings: Settings) -> list[Path]:
    """The files in the local store's staging area (upload sessions' bytes not yet published)."""
    root = Path(settings.storage.root) / "staging"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def put_file(
    client: httpx.Client, upload_id: str, name: str, data: bytes, digest: str | None = None
) -> httpx.Response:
    claimed = digest if digest is not None else f"sha256:{sha256_hex(data)}"
    response: httpx.Response = client.put(
        f"/api/v1/uploads/{upload_id}/files/{name}",
        content=data,
        headers={"X-Content-Digest": claimed},
    )
    return response


def upload_dir(client: TestClient, directory: Path, purpose: str = "adapter") -> str:
    upload_id = open_upload(client, purpose)
    for path in sorted(directory.iterdir()):
        if path.is_file():
            r = put_file(client, upload_id, path.name, path.read_bytes())
            assert r.status_code == 201, r.text
    return upload_id


def push(
    client: httpx.Client, namespace: str, adapter: str, directory: Path, base: str, **metadata: Any
) -> httpx.Response:
    """Upload every file of ``directory`` and register it; returns the registration response
    (an upload refused file by file is returned as that PUT's response)."""
    upload_id = open_upload(client)
    for path in sorted(directory.iterdir()):
        if path.is_file():
            r = put_file(client, upload_id, path.name, path.read_bytes())
            if r.status_code != 201:
                return r
    response: httpx.Response = client.post(
        f"/api/v1/adapters/{namespace}/{adapter}/versions",
        json={"base": base, "upload_id": upload_id, **metadata},
    )
    return response


def error_of(response: httpx.Response) -> tuple[str, str | None]:
    body = response.json()
    return body["error"], body.get("context", {}).get("reason")


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)


def all_pages(
    client: TestClient,
    url: str,
    *,
    limit: int,
    headers: dict[str, str] | None = None,
    **params: Any,
) -> list[list[dict[str, Any]]]:
    """Every page of a keyset listing, following ``next_page_token`` (at most 1,000 pages)."""
    pages: list[list[dict[str, Any]]] = []
    token: str | None = None
    for _ in range(1000):
        query = {**params, "limit": limit, **({"page_token": token} if token else {})}
        r = client.get(url, params=query, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append(body["items"])
        token = body["next_page_token"]
        if token is None:
            return pages
    raise AssertionError("listing did not end")
