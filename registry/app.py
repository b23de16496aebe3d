"""The FastAPI application. ``create_app(settings)``; the lifespan builds engine, sessions,
artifact store and caches, and refuses to start on an out-of-date schema."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from registry import __version__
from registry.api.errors import install_error_handlers
from registry.api.routes import (
    adapters,
    artifacts,
    base_models,
    evaluations,
    health,
    meta,
    namespaces,
    uploads,
)
from registry.auth.cache import TokenCache
from registry.catalog.base_models import ManifestCache
from registry.db import migrate
from registry.db.engine import make_engine
from registry.db.session import Sessions
from registry.settings import Settings, get_settings
from registry.storage.factory import make_store

log = logging.getLogger("registry")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database)
        try:
            if settings.database.auto_migrate:
                migrate.upgrade(settings.database.url)
            migrate.check_schema(engine)
            app.state.schema_heads = frozenset(migrate.head_revisions())
            app.state.settings = settings
            app.state.sessions = Sessions(engine)
            app.state.store = make_store(settings.storage)
            app.state.manifests = ManifestCache()
            app.state.token_cache = TokenCache(settings.auth.token_cache_s)
            yield
        finally:
            engine.dispose()

    app = FastAPI(
        title="Adapter Registry",
        version=__version__,
        description="Registry and governance service for PEFT adapters.",
        lifespan=lifespan,
        # The schema is served by an authenticated route below (only health is public).
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    for module in (
        health,
        meta,
        namespaces,
        base_models,
        uploads,
        adapters,
        artifacts,
        evaluations,
    ):
        app.include_router(module.router)
    return app
