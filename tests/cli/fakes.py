"""An in-memory stand-in for the registry HTTP API (``httpx.MockTransport``).

Used only for faults a real server cannot be made to produce on demand: a 503 followed by
success (retry), bytes flipped in transit, a wrong digest header, a non-JSON gateway answer.
Everything a real server can do is tested against one (test_cli_e2e.py, test_readme.py)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from registry.client import version_digest

Handler = Callable[[httpx.Request], httpx.Response | None]


def error(status: int, code: str, detail: str = "", **context: Any) -> httpx.Response:
    return httpx.Response(status, json={"error": code, "detail": detail, "context": context})


@dataclass
class FakeRegistry:
    """Records every request; serves one adapter ``acme/bot`` whose versions are pushed."""

    requests: list[httpx.Request] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    uploads: dict[str, dict[str, bytes]] = field(default_factory=dict)
    versions: list[dict[str, Any]] = field(default_factory=list)
    blobs: dict[str, bytes] = field(default_factory=dict)
    #: handlers tried first (fault injection); returning None falls through
    overrides: list[Handler] = field(default_factory=list)
    #: file name -> bytes served instead of the stored ones (tampering)
    tampered: dict[str, bytes] = field(default_factory=dict)
    wrong_header: bool = False

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]

    def add_version(self, files: dict[str, bytes], *, state: str = "validated") -> dict[str, Any]:
        listing = []
        for name, data in sorted(files.items()):
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            self.blobs[digest] = data
            listing.append({"name": name, "digest": digest, "size": len(data)})
        number = len(self.versions) + 1
        version = {
            "namespace": "acme",
            "adapter": "bot",
            "version": number,
            "ref": f"acme/bot@v{number}",
            "digest": version_digest(listing),
            "state": state,
            "peft_type": "LORA",
            "r": 4,
            "base": "tiny@r1",
            "tags": [],
            "files": listing,
        }
        self.versions.append(version)
        return version

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        self.requests.append(request)
        self.bodies.append(body)
        for override in self.overrides:
            answer = override(request)
            if answer is not None:
                return answer
        path, method = request.url.path, request.method
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/api/v1/uploads":
            upload_id = f"00000000-0000-0000-0000-{len(self.uploads):012d}"
            self.uploads[upload_id] = {}
            return httpx.Response(201, json={"id": upload_id, "state": "open", "files": []})
        if method == "PUT" and parts[:3] == ["api", "v1", "uploads"]:
            upload_id, name = parts[3], parts[5]
            claimed = request.headers.get("X-Content-Digest", "")
            actual = "sha256:" + hashlib.sha256(body).hexdigest()
            if claimed != actual:
                return error(400, "digest_mismatch", "bad claim", reason="upload")
            self.uploads[upload_id][name] = body
            return httpx.Response(201, json={"name": name, "digest": actual, "size": len(body)})
        if method == "POST" and path == "/api/v1/adapters/acme/bot/versions":
            payload = json.loads(body)
            return httpx.Response(201, json=self.add_version(self.uploads[payload["upload_id"]]))
        if method == "GET" and path == "/api/v1/adapters/acme/bot/versions":
            return httpx.Response(200, json={"items": self.versions[::-1], "next_page_token": None})
        if parts[:6] == ["api", "v1", "adapters", "acme", "bot", "versions"] and len(parts) >= 7:
            selector = parts[6]
            if not self.versions:
                return error(404, "adapter_not_found", "no such adapter")
            version = self.versions[-1] if selector == "latest" else None
            for v in self.versions:
                if selector in (f"v{v['version']}", v["digest"]):
                    version = v
            if version is None:
                return error(404, "version_not_found", "no such version")
            if len(parts) == 7:
                return httpx.Response(200, json=version)
            if parts[7] == "files":
                return self._download(version, parts[8])
        return error(404, "not_found", f"fake has no {method} {path}")

    def _download(self, version: dict[str, Any], name: str) -> httpx.Response:
        for f in version["files"]:
            if f["name"] == name:
                data = self.tampered.get(name, self.blobs[f["digest"]])
                header = "sha256:" + "0" * 64 if self.wrong_header else f["digest"]
                return httpx.Response(200, content=data, headers={"X-Content-Digest": header})
        return error(404, "not_found", "no such file")
