"""The framework ceiling for the resolve benchmark: a bare FastAPI app whose routes return a
constant JSON shaped like a resolve answer (same keys, similar size). No middleware, no auth,
no database: what one uvicorn worker can answer on this machine, with the client in the loop.

``/resolve`` is ``async def`` (runs on the event loop); ``/resolve-sync`` is a plain ``def``
(FastAPI runs it in the thread pool, as it does the registry's sync routes).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

DIGEST = "sha256:" + "ab" * 32
BODY: dict[str, Any] = {
    "deployment": "chat-prod",
    "revision": 4,
    "arm": "stable",
    "ref": "bench/chat@v1",
    "version": 1,
    "digest": DIGEST,
    "base": "tiny-gpt2@main",
    "base_digest": "sha256:" + "cd" * 32,
    "peft_type": "LORA",
    "r": 4,
    "serving_name": "bench--chat--v1--abababababab",
    "files": [
        {"path": "adapter_config.json", "size": 512, "digest": "sha256:" + "01" * 32},
        {"path": "adapter_model.safetensors", "size": 12_345, "digest": "sha256:" + "02" * 32},
    ],
}

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/resolve")
async def resolve_async() -> dict[str, Any]:
    return BODY


@app.get("/resolve-sync")
def resolve_sync() -> dict[str, Any]:
    return BODY
