"""Set-up for the resolve benchmark: our deployment (through the HTTP API, as an admin and a
second approver), MLflow's registered model with an alias, and the bulk load of deployment
revisions for the "served at T" query."""

from __future__ import annotations

import io
import random
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench._common import Server, api_client, setup_catalog
from bench.registration import AdapterFiles, register, stage_upload

NAMESPACE = "bench"  # bench.registration.register pushes into this namespace
ADAPTER = "chat"
DEPLOYMENT = "chat-prod"
APPROVER = "bench-approver"
CANARY_SHARE_BP = 500
RESOLVE_KEYS = {
    "deployment",
    "revision",
    "arm",
    "ref",
    "version",
    "digest",
    "base",
    "base_digest",
    "peft_type",
    "r",
    "serving_name",
    "files",
}
MLFLOW_MODEL = "chat"
MLFLOW_ALIAS = "champion"


def _ok(r: httpx.Response, *expected: int) -> dict[str, Any]:
    if r.status_code not in expected:
        raise RuntimeError(
            f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:400]}"
        )
    body: dict[str, Any] = r.json() if r.content else {}
    return body


# --------------------------------------------------------------------------- ours


@dataclass
class OursState:
    """What the set-up reached; ``notes`` say what was missing."""

    resolve_ok: bool = False
    canary: bool = False
    revision: int | None = None
    share_bp: int = 0
    promotion_id: str | None = None
    sample: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def _promote(admin: httpx.Client, approver: httpx.Client, ref: str) -> tuple[str, str]:
    """Request as the admin, approve as the second principal; (promotion id, final state)."""
    p = _ok(admin.post("/api/v1/promotions", json={"ref": ref, "deployment": DEPLOYMENT}), 201)
    if p["state"] != "pending":
        raise RuntimeError(f"promotion of {ref} is {p['state']}: {p['gates']}")
    done = _ok(approver.post(f"/api/v1/promotions/{p['id']}/approve"), 200)
    if done["state"] not in ("completed", "approved", "rolling_out"):
        raise RuntimeError(f"promotion of {ref} ended {done['state']}")
    return str(p["id"]), str(done["state"])


def setup_ours(server: Server, admin_token: str) -> OursState:
    """Namespace, base, two versions with evaluations, a deployment, v1 promoted (approved by a
    second principal), then v2 promoted and a canary at 5 % where the rollout endpoint exists."""
    state = OursState()
    with api_client(server, admin_token) as admin:
        base = setup_catalog(admin, NAMESPACE)
        files = AdapterFiles()
        for v in (1, 2):
            register(admin, ADAPTER, base, stage_upload(admin, files, f"resolve-v{v}"))
            _ok(
                admin.post(
                    f"/api/v1/adapters/{NAMESPACE}/{ADAPTER}/versions/v{v}/evaluations",
                    json={"suite": "bench", "metric": "accuracy", "value": 0.9},
                ),
                201,
            )
        _ok(
            admin.post(
                "/api/v1/principals",
                json={"name": APPROVER, "role": "approver", "namespaces": [NAMESPACE]},
            ),
            201,
        )
        approver_token = _ok(admin.post("/api/v1/tokens", json={"principal": APPROVER}), 201)
        _ok(
            admin.post(
                "/api/v1/deployments",
                json={"name": DEPLOYMENT, "base": base, "adapter": f"{NAMESPACE}/{ADAPTER}"},
            ),
            201,
        )
        with api_client(server, str(approver_token["token"])) as approver:
            state.promotion_id, _ = _promote(admin, approver, f"{NAMESPACE}/{ADAPTER}@v1")
            try:
                _, v2_state = _promote(admin, approver, f"{NAMESPACE}/{ADAPTER}@v2")
                state.notes.append(f"promotion of v2 approved: state {v2_state}")
            except RuntimeError as exc:
                state.notes.append(f"second promotion (v2) failed: {exc}")
        _canary(admin, state)
        r = admin.get(f"/api/v1/deployments/{DEPLOYMENT}/resolve", params={"key": "tenant-0"})
        if r.status_code == 200 and set(r.json()) >= RESOLVE_KEYS:
            state.resolve_ok = True
            state.sample = r.json()
        else:
            state.notes.append(
                f"GET /api/v1/deployments/{{d}}/resolve answered {r.status_code}: "
                f"{r.text[:200]} (resolve not measured)"
            )
    return state


def _canary(admin: httpx.Client, state: OursState) -> None:
    """Unless the approved promotion of v2 already started a canary (the default rollout plan
    does), put v2 on a 5 % canary through ``POST …/rollout`` (If-Match: the revision)."""
    status = _ok(admin.get(f"/api/v1/deployments/{DEPLOYMENT}"), 200)
    if status.get("candidate") is None or not status["share_bp"]:
        r = admin.post(
            f"/api/v1/deployments/{DEPLOYMENT}/rollout",
            json={"share_bp": CANARY_SHARE_BP},
            headers={"If-Match": f'"{status["revision"]}"'},
        )
        if r.status_code in (404, 405):
            state.notes.append(
                f"POST /api/v1/deployments/{{d}}/rollout answered {r.status_code}: "
                "measured with the stable arm only"
            )
        elif r.status_code >= 300:
            state.notes.append(
                f"rollout to {CANARY_SHARE_BP} bp refused: {r.status_code} {r.text[:200]}"
            )
        else:
            state.notes.append(f"canary set with POST …/rollout to {CANARY_SHARE_BP} bp")
        status = _ok(admin.get(f"/api/v1/deployments/{DEPLOYMENT}"), 200)
    state.revision = int(status["revision"])
    state.share_bp = int(status["share_bp"])
    state.canary = status.get("candidate") is not None and state.share_bp > 0


# --------------------------------------------------------------------------- MLflow


def setup_mlflow(server: Server) -> None:
    """One registered model, two versions, alias ``champion`` → version 1."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
    client.create_registered_model(MLFLOW_MODEL)
    for v in (1, 2):
        client.create_model_version(
            MLFLOW_MODEL, f"s3://bench/{MLFLOW_MODEL}/{v}/model", await_creation_for=0
        )
    client.set_registered_model_alias(MLFLOW_MODEL, MLFLOW_ALIAS, "1")


class _CloseConnection:
    """An MLflow request-header provider adding ``Connection: close`` while enabled, so the
    client's shared ``requests`` session opens a new TCP connection for every request."""

    enabled = False

    def in_context(self) -> bool:
        return _CloseConnection.enabled

    def request_headers(self) -> dict[str, str]:
        return {"Connection": "close"}


_registered = False


def mlflow_connection_close(enabled: bool) -> None:
    global _registered
    if not _registered:
        from mlflow.tracking.request_header.registry import _request_header_provider_registry

        _request_header_provider_registry.register(_CloseConnection)  # type: ignore[no-untyped-call]
        _registered = True
    _CloseConnection.enabled = enabled


# --------------------------------------------------------------------------- served at T


@dataclass
class ServedLoad:
    deployments: list[str]
    first: datetime
    last: datetime
    revisions: int
    load_s: float = 0.0


REVISION_COLUMNS = (
    "id",
    "deployment_id",
    "revision",
    "stable_version_id",
    "candidate_version_id",
    "candidate_share_bp",
    "salt",
    "hash_spec",
    "reason",
    "detail",
    "actor_id",
    "promotion_id",
    "effective_at",
)
SHARES = (0, 500, 1000, 2500, 5000, 10_000)
STEP = timedelta(minutes=1)


def _revision_rows(
    deployment_id: uuid.UUID,
    per_deployment: int,
    t0: datetime,
    versions: tuple[uuid.UUID, uuid.UUID],
    actor_id: uuid.UUID,
    promotion_id: uuid.UUID | None,
) -> Iterator[tuple[Any, ...]]:
    """Revisions 1..N of one deployment, one minute apart: a new salt every 10 revisions (a new
    rollout), a candidate on most of them with a cycling share, a promotion every 50th."""
    v1, v2 = versions
    salt = ""
    for n in range(1, per_deployment + 1):
        if n % 10 == 1:
            salt = secrets.token_hex(16)
        share = SHARES[n % len(SHARES)]
        promoted = n % 50 == 0
        yield (
            uuid.uuid4(),
            deployment_id,
            n,
            v1 if n % 2 else v2,
            (v2 if n % 2 else v1) if share else None,
            share,
            salt,
            "sha256-salt-key-v1",
            "promotion" if promoted else ("created" if n == 1 else "step"),
            "",
            actor_id,
            promotion_id if promoted else None,
            t0 + STEP * n,
        )


def load_revisions(url: str, n_deployments: int, per_deployment: int) -> ServedLoad:
    """Copy the API-made deployment ``n_deployments`` times (rows inserted directly) and give
    each ``per_deployment`` revisions ending about a minute ago; sets ``current_revision``,
    bumps the routing epoch where that table exists. PostgreSQL: COPY; SQLite: executemany in
    one transaction. The caller runs ANALYZE."""
    from sqlalchemy import create_engine, insert, inspect, select, text

    from registry.auth.models import Principal
    from registry.catalog.models import AdapterVersion
    from registry.deployments.models import Deployment, DeploymentRevision

    engine = create_engine(url)
    dialect = engine.dialect.name
    names = [f"served-{i:03d}" for i in range(n_deployments)]
    now = datetime.now(UTC).replace(microsecond=0)
    t0 = now - STEP * (per_deployment + 1)
    try:
        with engine.begin() as conn:
            template = (
                conn.execute(select(Deployment.__table__).where(Deployment.name == DEPLOYMENT))
                .mappings()
                .one()
            )
            versions = tuple(
                conn.execute(
                    select(AdapterVersion.id)
                    .where(AdapterVersion.adapter_id == template["adapter_id"])
                    .order_by(AdapterVersion.version)
                    .limit(2)
                ).scalars()
            )
            actor_id = conn.execute(
                select(Principal.id).where(Principal.role == "admin").limit(1)
            ).scalar_one()
            promotion_id = conn.execute(
                select(DeploymentRevision.promotion_id)
                .where(DeploymentRevision.promotion_id.is_not(None))
                .limit(1)
            ).scalar()
            ids = [uuid.uuid4() for _ in names]
            conn.execute(
                insert(Deployment),
                [
                    {
                        **template,
                        "id": did,
                        "name": name,
                        "current_revision": per_deployment,
                        "created_at": t0,
                    }
                    for did, name in zip(ids, names, strict=True)
                ],
            )
            rng = random.Random(5)
            per_dep = [
                _revision_rows(
                    did,
                    per_deployment,
                    t0 + timedelta(seconds=rng.randrange(60)),
                    (versions[0], versions[-1]),
                    actor_id,
                    promotion_id,
                )
                for did in ids
            ]
            if dialect == "postgresql":
                _copy_postgres(conn, per_dep)
            else:
                for rows in per_dep:
                    conn.execute(
                        insert(DeploymentRevision),
                        [dict(zip(REVISION_COLUMNS, r, strict=True)) for r in rows],
                    )
            if "routing_epoch" in inspect(conn).get_table_names():
                conn.execute(text("UPDATE routing_epoch SET epoch = epoch + 1"))
    finally:
        engine.dispose()
    return ServedLoad(names, t0 + STEP, t0 + STEP * per_deployment, n_deployments * per_deployment)


def _copy_postgres(conn: Any, per_dep: list[Iterator[tuple[Any, ...]]]) -> None:
    """COPY … FROM STDIN (text format) on the SQLAlchemy connection's psycopg connection."""
    cursor = conn.connection.driver_connection.cursor()
    columns = ", ".join(REVISION_COLUMNS)
    with cursor.copy(f"COPY deployment_revisions ({columns}) FROM STDIN") as copy:
        for rows in per_dep:
            buf = io.StringIO()
            for row in rows:
                buf.write("\t".join(_copy_text(v) for v in row))
                buf.write("\n")
            copy.write(buf.getvalue())


def _copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
