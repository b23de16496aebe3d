"""Request dependencies: settings, sessions (one unit of work per request), the caller, store.

``get_session`` commits before the response is sent (``scope="function"``) so that a failing
commit becomes an error response instead of a lost write after a 2xx.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from registry.access.actor import Actor
from registry.access.policy_sets import ActivePolicies, PolicyHolder
from registry.access.subjects import load_actor
from registry.api.openapi import BEARER_SCHEME
from registry.api.params import IdempotencyKey
from registry.audit.denials import DenialLimiter
from registry.auth.principal import AuthenticatedPrincipal
from registry.auth.service import authenticate_cached
from registry.auth.tokens import hash_token, is_well_formed
from registry.catalog.base_models import ManifestCache
from registry.db.session import Sessions, unit_of_work
from registry.errors import IdempotencyKeyReused, RegistryError, Unauthenticated
from registry.health import DependencyHealth
from registry.idempotency import sealing
from registry.idempotency import service as idempotency
from registry.oidc import service as oidc
from registry.settings import Settings
from registry.storage.base import ArtifactStore

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_sessions(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.sessions
    return sessions


async def get_store(request: Request) -> ArtifactStore:
    store: ArtifactStore = request.app.state.store
    return store


async def get_manifests(request: Request) -> ManifestCache:
    cache: ManifestCache = request.app.state.manifests
    return cache


def get_session(request: Request) -> Iterator[Session]:
    """One session per request: writer (BEGIN IMMEDIATE on SQLite) unless the method is safe.

    A refused mutating call (policy, four-eyes) rolls back; its audit event is then appended in
    a transaction of its own, so failed attempts are on the record too, at most
    ``REGISTRY_AUDIT__DENIED_EVENTS_PER_WINDOW`` per principal and window
    (:mod:`registry.audit.denials`).
    """
    with request_unit(request, write=request.method not in _READ_METHODS) as session:
        yield session


@contextmanager
def request_unit(request: Request, *, write: bool) -> Iterator[Session]:
    """A unit of work of a request. A refusal's audit event is appended in a transaction of its
    own after the refused transaction rolled back; a committed write clears the database
    failures readiness reports (``registry.health``)."""
    sessions: Sessions = request.app.state.sessions
    try:
        with unit_of_work(sessions.write if write else sessions.read) as session:
            yield session
    except RegistryError as exc:
        if exc.audit_entry is not None:
            denials: DenialLimiter = request.app.state.denials
            denials.record(sessions, exc.audit_entry)
        raise
    if write:
        health: DependencyHealth = request.app.state.health
        health.database_ok()


def _load_actor(
    request: Request, session: Session, principal: AuthenticatedPrincipal, policies: ActivePolicies
) -> Actor:
    return load_actor(
        session, principal, policies.authorizer, getattr(request.state, "request_id", None)
    )


@contextmanager
def short_read(
    request: Request, principal: AuthenticatedPrincipal
) -> Iterator[tuple[Session, Actor]]:
    """A short read unit of work and the caller's ``Actor``, for routes that then talk to the
    artifact store: the connection goes back to the pool before any blob transfer, so a slow
    store cannot hold database connections (refusals are audited as through ``get_session``)."""
    holder: PolicyHolder = request.app.state.policies
    with request_unit(request, write=False) as session:
        yield session, _load_actor(request, session, principal, holder.current(session))


def _authenticate_sync(request: Request, authorization: str | None) -> AuthenticatedPrincipal:
    """Authenticate ``Authorization: Bearer <token>`` in a short read transaction of its own
    (streaming uploads must not hold a transaction open while bytes flow)."""
    token = None
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthenticated("use Authorization: Bearer <token>")
        token = value.strip()
    sessions: Sessions = request.app.state.sessions
    if token is not None and oidc.looks_like_jwt(token):
        # A CI OIDC token: verified, jti consumed (committed at once: single use).
        principal = oidc.authenticate_oidc(
            lambda: unit_of_work(sessions.read),
            lambda: unit_of_work(sessions.write),
            verifier=request.app.state.oidc_verifier,
            token=token,
        )
        request.state.principal = principal
        return principal
    principal = authenticate_cached(
        lambda: unit_of_work(sessions.read), request.app.state.token_cache, token=token
    )
    request.state.principal = principal
    return principal


async def principal_from_header(
    request: Request, authorization: str | None
) -> AuthenticatedPrincipal:
    """Authenticate ``Authorization: Bearer <token>``: from the token cache without leaving the
    event loop, else in a worker thread with a short read transaction of its own (streaming
    uploads must not hold a transaction open while bytes flow).

    A request with a body was already authenticated by the request guard before its body was
    read (``registry.api.guard``); that principal is taken from the request state."""
    state = request.scope.get("state")
    if state is not None and (known := state.get("principal")) is not None:
        already: AuthenticatedPrincipal = known
        return already
    if authorization:
        scheme, _, value = authorization.partition(" ")
        token = value.strip()
        if scheme.lower() == "bearer" and is_well_formed(token):
            hit = request.app.state.token_cache.get(hash_token(token))
            if hit is not None:
                request.state.principal = hit
                principal: AuthenticatedPrincipal = hit
                return principal
    return await run_in_threadpool(_authenticate_sync, request, authorization)


# Declares the bearer scheme in the OpenAPI document (``security`` of every authenticated
# operation); it refuses nothing itself (``auto_error=False``): ``principal_from_header`` does.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name=BEARER_SCHEME,
    description="An API token (`ar_...`) or a CI OIDC token (a JWT, see /api/v1/oidc/token).",
)


async def get_principal(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> AuthenticatedPrincipal:
    """The authenticated caller (the dependency of every non-health route)."""
    return await principal_from_header(request, request.headers.get("authorization"))


def get_policies(
    request: Request, session: Annotated[Session, Depends(get_session, scope="function")]
) -> ActivePolicies:
    holder: PolicyHolder = request.app.state.policies
    return holder.current(session)


def get_actor(
    request: Request,
    session: Annotated[Session, Depends(get_session, scope="function")],
    principal: Annotated[AuthenticatedPrincipal, Depends(get_principal)],
    policies: Annotated[ActivePolicies, Depends(get_policies)],
) -> Actor:
    """The caller as the policy engine sees it (role and memberships read fresh)."""
    return _load_actor(request, session, principal, policies)


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionsDep = Annotated[Sessions, Depends(get_sessions)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
PrincipalDep = Annotated[AuthenticatedPrincipal, Depends(get_principal)]
StoreDep = Annotated[ArtifactStore, Depends(get_store)]
ManifestsDep = Annotated[ManifestCache, Depends(get_manifests)]
ActorDep = Annotated[Actor, Depends(get_actor)]
PoliciesDep = Annotated[ActivePolicies, Depends(get_policies)]


@dataclass
class WriteContext:
    """What a mutating route needs: the session, the caller, and idempotent replays."""

    request: Request
    session: Session
    principal: AuthenticatedPrincipal
    settings: Settings
    idempotency_key: str | None
    actor: Actor

    def idempotent(
        self,
        body: BaseModel | None,
        produce: Callable[[], Any],
        *,
        status_code: int = 200,
        secret_fields: tuple[str, ...] = (),
    ) -> JSONResponse:
        """Run ``produce`` once per (principal, Idempotency-Key); replay the stored answer.

        ``secret_fields`` (top-level keys of the answer, e.g. a minted token) are stored sealed
        to the caller's credential (``idempotency.sealing``), never in the clear; a replay by
        another credential cannot open them and is refused as ``idempotency_key_reused``.
        """
        if self.idempotency_key is None:
            return JSONResponse(jsonable_encoder(produce()), status_code=status_code)
        fp = _fingerprint(self.request, body)
        stored, record = idempotency.begin(
            self.session,
            principal_id=self.principal.id,
            key=self.idempotency_key,
            fingerprint=fp,
            ttl_s=self.settings.server.idempotency_ttl_s,
        )
        if stored is not None:
            replay = self._unseal(stored.body, secret_fields, salt=fp)
            return JSONResponse(
                replay, status_code=stored.status_code, headers={"Idempotent-Replayed": "true"}
            )
        assert record is not None
        payload = jsonable_encoder(produce())
        kept = payload
        if secret_fields:
            credential = self._credential()
            kept = {
                k: sealing.seal(v, credential=credential, salt=fp) if k in secret_fields else v
                for k, v in payload.items()
            }
        idempotency.complete(self.session, record=record, status_code=status_code, body=kept)
        return JSONResponse(payload, status_code=status_code)

    def _credential(self) -> str:
        """The bearer credential of this request (authenticated already, so present)."""
        return self.request.headers.get("authorization", "").partition(" ")[2].strip()

    def _unseal(self, body: Any, secret_fields: tuple[str, ...], *, salt: str) -> Any:
        if not secret_fields or not isinstance(body, dict):
            return body
        credential = self._credential()
        opened = dict(body)
        for field in secret_fields:
            value = sealing.unseal(body.get(field), credential=credential, salt=salt)
            if value is None:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was used with another credential",
                    context={"key": self.idempotency_key},
                )
            opened[field] = value
        return opened


def _fingerprint(request: Request, body: BaseModel | None) -> str:
    return idempotency.fingerprint(
        request.method,
        request.url.path,
        # Fields the caller left out are not the same request as fields sent with their
        # default values (POST /tokens: an omitted lifetime is clamped, a sent one refused).
        body.model_dump(mode="json", exclude_unset=True) if body is not None else None,
    )


@dataclass
class SlowWriteContext:
    """For a write that does slow work (validation, blob transfers) before its inserts.

    ``WriteDep`` opens the write transaction while dependencies are solved — on SQLite that is
    the database-wide write lock, held until the response. A route with slow work instead
    answers a replay first (:meth:`replay`), reads and authorizes in a short read transaction
    (:meth:`reading`), does the slow work holding no transaction, and only then runs its
    inserts in a short write transaction (:meth:`commit`, idempotent like ``WriteDep``).
    """

    request: Request
    principal: AuthenticatedPrincipal
    settings: Settings
    idempotency_key: str | None

    @property
    def sessions(self) -> Sessions:
        sessions: Sessions = self.request.app.state.sessions
        return sessions

    def replay(self, body: BaseModel | None) -> JSONResponse | None:
        """The stored answer of an earlier request with this key, before any work is done."""
        if self.idempotency_key is None:
            return None
        with unit_of_work(self.sessions.read) as session:
            stored = idempotency.peek(
                session,
                principal_id=self.principal.id,
                key=self.idempotency_key,
                fingerprint=_fingerprint(self.request, body),
            )
        if stored is None:
            return None
        return JSONResponse(
            stored.body, status_code=stored.status_code, headers={"Idempotent-Replayed": "true"}
        )

    def reading(self) -> AbstractContextManager[tuple[Session, Actor]]:
        return short_read(self.request, self.principal)

    def commit(
        self,
        body: BaseModel | None,
        actor: Actor,
        produce: Callable[[Session], Any],
        *,
        status_code: int = 200,
    ) -> JSONResponse:
        """Run ``produce`` in a write transaction of its own, idempotently."""
        with request_unit(self.request, write=True) as session:
            ctx = WriteContext(
                self.request, session, self.principal, self.settings, self.idempotency_key, actor
            )
            return ctx.idempotent(body, lambda: produce(session), status_code=status_code)


async def get_slow_write_context(
    request: Request,
    principal: PrincipalDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> SlowWriteContext:
    return SlowWriteContext(request, principal, settings, idempotency_key)


SlowWriteDep = Annotated[SlowWriteContext, Depends(get_slow_write_context)]
#: The session a ``SlowWriteContext.commit`` callback receives (routes import no sqlalchemy).
DbSession = Session


async def get_write_context(  # no I/O: async saves a worker-thread hop per write request
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    actor: ActorDep,
    idempotency_key: IdempotencyKey = None,
) -> WriteContext:
    return WriteContext(request, session, principal, settings, idempotency_key, actor)


WriteDep = Annotated[WriteContext, Depends(get_write_context)]
