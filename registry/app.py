"""The FastAPI application. ``create_app(settings)``; the lifespan builds engine, sessions,
artifact store and caches, and refuses to start on an out-of-date schema."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine

from registry import __version__
from registry.access.policy_sets import PolicyHolder
from registry.access.resolve_guard import ResolveGuard
from registry.api.errors import install_error_handlers
from registry.api.fast_path import ServingFastPath
from registry.api.guard import RequestGuard
from registry.api.http_metrics import HttpMetricsMiddleware
from registry.api.metrics_port import MetricsListener
from registry.api.openapi import install_openapi
from registry.api.request_id import RequestIdMiddleware
from registry.api.routes import (
    adapters,
    artifacts,
    audit,
    base_models,
    console_logins,
    deployments,
    evaluations,
    health,
    jobs,
    meta,
    mlflow_imports,
    mlflow_mirror,
    namespaces,
    policies,
    principals,
    promotions,
    publishers,
    serving,
    tokens,
    traffic,
    uploads,
    uploads_direct,
    webhooks,
)
from registry.audit.checkpoints import LEADER_LOCK_KEY as CHECKPOINT_LEADER_KEY
from registry.audit.checkpoints import Checkpointer
from registry.audit.denials import DenialLimiter
from registry.audit.keys import load_or_create_signing_key
from registry.auth.cache import TokenCache
from registry.catalog.base_models import ManifestCache
from registry.console import api_docs as console_api_docs
from registry.console import catalog_pages as console_catalog
from registry.console import oidc_pages as console_oidc
from registry.console import pages as console_pages
from registry.console.oidc_login import OidcLogin
from registry.console.sessions import guard_cookie
from registry.db import migrate
from registry.db.engine import make_engine
from registry.db.leader_lock import LeaderLock
from registry.db.session import Sessions, unit_of_work
from registry.deployments.routing import RoutingCache
from registry.events.worker import WebhookWorker
from registry.health import DependencyHealth, build_probe
from registry.jobs.env import WorkerEnv
from registry.jobs.worker import JobWorker
from registry.metrics import Metrics
from registry.metrics_workers import SnapshotWriter, snapshot_dir_from_env
from registry.mlflow_mirror.worker import MirrorWorker
from registry.oidc.jwks import JwksCache
from registry.oidc.verifier import OidcVerifier
from registry.oidc_settings import OidcSettings
from registry.policy.loader import default_policy_dir
from registry.settings import Settings, get_settings
from registry.storage.factory import make_store
from registry.traffic.controller import LEADER_LOCK_KEY, Controller

log = logging.getLogger("registry")


def make_verifier(settings: OidcSettings) -> OidcVerifier:
    jwks = JwksCache(
        timeout_s=settings.jwks_timeout_s,
        cache_s=settings.jwks_cache_s,
        refresh_min_s=settings.jwks_refresh_min_s,
        allow_insecure_loopback=settings.allow_insecure_loopback,
    )
    return OidcVerifier(jwks, leeway_s=settings.leeway_s, max_token_age_s=settings.max_token_age_s)


def _open_state(app: FastAPI, settings: Settings, engine: Engine) -> None:
    """Check the schema, then build sessions, store, caches, policies and the signing key."""
    if settings.database.auto_migrate:
        migrate.upgrade(settings.database.url)
    migrate.check_schema(engine)
    app.state.schema_heads = frozenset(migrate.head_revisions())
    app.state.settings = settings
    app.state.sessions = Sessions(engine)
    app.state.store = make_store(settings.storage)
    app.state.manifests = ManifestCache()
    app.state.token_cache = TokenCache(settings.auth.token_cache_s)
    app.state.policies = PolicyHolder(settings.policy.directory or default_policy_dir())
    with unit_of_work(app.state.sessions.read) as session:
        app.state.policies.current(session)  # fail fast on a broken policy set
    app.state.oidc_verifier = make_verifier(settings.oidc)
    app.state.console_oidc = (
        OidcLogin(
            settings.console_oidc,
            app.state.oidc_verifier,
            allow_insecure_loopback=settings.oidc.allow_insecure_loopback,
        )
        if settings.console_oidc.enabled
        else None
    )
    app.state.audit_key = load_or_create_signing_key(settings.audit.signing_key_path)


def _start_checkpointer(app: FastAPI, settings: Settings) -> Checkpointer | None:
    """The periodic audit checkpointer, started when its interval is positive."""
    if settings.audit.checkpoint_interval_s <= 0:
        return None
    checkpointer = Checkpointer(
        app.state.sessions,
        app.state.store,
        app.state.audit_key,
        interval_s=settings.audit.checkpoint_interval_s,
        # One exporter across replicas and `serve --workers` processes.
        leader=LeaderLock(
            app.state.sessions.engine,
            CHECKPOINT_LEADER_KEY,
            name="adapter-registry-checkpointer",
            connect_timeout_s=settings.database.connect_timeout_s,
        ),
    )
    checkpointer.start()
    return checkpointer


def _install_health_and_metrics(app: FastAPI, settings: Settings) -> None:
    app.state.health = DependencyHealth()
    app.state.readiness = build_probe(
        sessions=app.state.sessions,
        store=app.state.store,
        settings=settings,
        expected_heads=app.state.schema_heads,
        health=app.state.health,
    )
    metrics: Metrics = app.state.metrics
    metrics.watch_pool(app.state.sessions.engine.pool)
    if app.state.store.backend == "s3":
        metrics.watch_s3(app.state.store.client)
    app.state.readiness.prime("storage")  # logs a misconfigured store (bucket, keys) at once
    app.state.denials = DenialLimiter(
        limit=settings.audit.denied_events_per_window,
        window_s=settings.audit.denied_window_s,
        on_suppressed=app.state.metrics.denials_suppressed.inc,
    )


def _start_metrics_listener(app: FastAPI, settings: Settings) -> MetricsListener | None:
    """The token-free metrics listener on its own port, when REGISTRY_METRICS__PORT is set."""
    if settings.metrics.port is None or app.state.metrics.snapshots is not None:
        return None  # (several workers: the `serve` parent listens for all of them)
    try:
        listener = MetricsListener(
            app.state.metrics.render, settings.metrics.host, settings.metrics.port
        )
    except OSError as exc:
        raise RuntimeError(
            f"REGISTRY_METRICS__HOST/REGISTRY_METRICS__PORT: cannot listen on "
            f"{settings.metrics.host}:{settings.metrics.port} ({exc})"
        ) from exc
    listener.start()
    log.info("metrics on http://%s:%d/metrics", settings.metrics.host, listener.port)
    return listener


def _start_snapshots(app: FastAPI) -> SnapshotWriter | None:
    """Under ``serve --workers N``: this worker's metrics snapshots, for the others' scrapes."""
    metrics: Metrics = app.state.metrics
    if metrics.snapshots is None:
        return None
    writer = SnapshotWriter(metrics.registry, metrics.snapshots)
    writer.start()
    return writer


def _start_serving(app: FastAPI, settings: Settings) -> Controller:
    """The routing cache (started), the resolve guard, and the rollout controller (started
    when enabled)."""
    app.state.routing = RoutingCache(
        app.state.sessions,
        app.state.store,
        presign_ttl_s=settings.storage.presign_ttl_s,
        poll_s=settings.rollout.routing_poll_s,
    )
    app.state.routing.start()
    app.state.resolve_guard = ResolveGuard(
        app.state.sessions,
        app.state.policies,
        ttl_s=settings.rollout.resolve_decision_cache_s,
    )
    # A change of access (registry.principals.lifecycle) bumps the routing epoch: every replica
    # then drops what it cached per caller.
    app.state.routing.on_invalidate += [app.state.token_cache.clear, app.state.resolve_guard.clear]
    controller = Controller(
        app.state.sessions,
        interval_s=settings.controller.interval_s,
        on_decision=app.state.metrics.decision,
        leader=LeaderLock(
            app.state.sessions.engine,
            LEADER_LOCK_KEY,
            name="adapter-registry-controller",
            connect_timeout_s=settings.database.connect_timeout_s,
        ),
    )
    app.state.controller = controller
    if settings.controller.enabled:
        controller.start()
    return controller


def _start_jobs(app: FastAPI, settings: Settings) -> JobWorker:
    """The adapter maths job worker (its threads started when enabled)."""
    worker = JobWorker(
        WorkerEnv(
            sessions=app.state.sessions,
            store=app.state.store,
            manifests=app.state.manifests,
            policies=app.state.policies,
            settings=settings,
        )
    )
    app.state.jobs = worker
    if settings.jobs.enabled:
        worker.start()
    return worker


def _start_webhooks(app: FastAPI, settings: Settings) -> WebhookWorker:
    """The webhook delivery worker (its thread started when enabled)."""
    worker = WebhookWorker(app.state.sessions, app.state.policies, settings.webhooks)
    app.state.webhooks = worker
    if settings.webhooks.enabled:
        worker.start()
    return worker


def _start_mirror(app: FastAPI, settings: Settings) -> MirrorWorker:
    """The MLflow mirror worker (its thread started when enabled)."""
    worker = MirrorWorker(app.state.sessions, settings.mlflow)
    app.state.mlflow_mirror = worker
    if settings.mlflow.mirror_enabled:
        worker.start()
    return worker


def _lifespan(settings: Settings) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database)
        try:
            _open_state(app, settings, engine)
            checkpointer = _start_checkpointer(app, settings)
            _install_health_and_metrics(app, settings)
            metrics_listener = _start_metrics_listener(app, settings)
            snapshots = _start_snapshots(app)
            controller = _start_serving(app, settings)
            job_worker = _start_jobs(app, settings)
            webhook_worker = _start_webhooks(app, settings)
            mirror_worker = _start_mirror(app, settings)
            # Everything built so far (modules, SQLAlchemy mappers, the policy engine) lives as
            # long as the process: move it out of the cyclic collector's reach, so the frequent
            # young-generation passes and the rare full ones stop rescanning it per request.
            gc.freeze()
            try:
                yield
            finally:
                mirror_worker.stop()
                webhook_worker.stop()
                job_worker.stop()
                controller.stop()
                app.state.routing.stop()
                app.state.readiness.close()
                if app.state.console_oidc is not None:
                    app.state.console_oidc.close()
                if checkpointer is not None:
                    checkpointer.stop()
                if metrics_listener is not None:
                    metrics_listener.stop()
                if snapshots is not None:
                    snapshots.stop()
        finally:
            engine.dispose()

    return lifespan


# The serving hot path first: routes are matched in order, and resolve / routing-table are the
# most frequent requests by far (GETs answered by the ServingFastPath middleware, the rest by
# plain Starlette routes; see serving.py).
_ROUTE_MODULES = (
    serving,
    health,
    meta,
    namespaces,
    base_models,
    uploads,
    uploads_direct,
    adapters,
    mlflow_imports,
    artifacts,
    evaluations,
    principals,
    console_logins,
    tokens,
    publishers,
    policies,
    deployments,
    mlflow_mirror,
    promotions,
    traffic,
    audit,
    jobs,
    webhooks,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Adapter Registry",
        version=__version__,
        description="Registry and governance service for PEFT adapters.",
        lifespan=_lifespan(settings),
        # The schema is served by an authenticated route below (only health is public).
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.metrics = Metrics(snapshot_dir_from_env())
    install_error_handlers(app)
    install_openapi(app)
    # Added first = innermost. The request guard (body limits, authentication before any body
    # is read) sits inside the serving fast path, which only takes body-less GETs of resolve
    # and routing-table: the hottest requests skip one layer. Then request ids; outermost the
    # HTTP metrics, whose time covers every layer.
    app.add_middleware(RequestGuard, limits=settings.server, console_auth=guard_cookie)
    app.add_middleware(ServingFastPath)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(HttpMetricsMiddleware, metrics=app.state.metrics)
    for module in _ROUTE_MODULES:
        app.include_router(module.router)
    app.include_router(console_pages.router)
    app.include_router(console_oidc.router)
    app.include_router(console_api_docs.router)
    app.include_router(console_catalog.router)
    app.router.routes[:0] = serving.fast_routes()
    return app
