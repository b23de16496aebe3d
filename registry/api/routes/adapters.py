"""Adapters and their versions: push (register), list, show, lineage, tags, archive."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, status

from registry.api.deps import (
    ActorDep,
    DbSession,
    ManifestsDep,
    SessionDep,
    SettingsDep,
    SlowWriteDep,
    StoreDep,
    WriteDep,
)
from registry.api.pagination import Page, decode_token, make_page
from registry.api.params import AdapterPath, BaseQ, NamespacePath, NamespaceQ, SelectorPath, TagQ
from registry.api.routes._common import (
    VERSION_NOT_FOUND,
    PageDep,
    authenticated_router,
    responses,
    version_ref,
)
from registry.catalog import mutations, queries, registration
from registry.catalog.schemas import (
    AdapterRead,
    ArchiveRequest,
    LineageEdgeRead,
    TagsUpdate,
    VersionCreate,
    VersionRead,
)
from registry.catalog.views import adapter_read, lineage_reads, version_reads
from registry.errors import (
    BaseModelNotFound,
    CorruptSafetensors,
    DigestMismatch,
    ForbiddenFile,
    IncompatibleBase,
    InconsistentAdapter,
    InvalidAdapterConfig,
    InvalidPageToken,
    InvalidTransition,
    MissingWeights,
    NamespaceNotFound,
    UnhealthyTensors,
    UnknownMethod,
    UnknownPeftType,
    UploadNotFound,
    UriNotAllowed,
    VersionAlreadyExists,
)
from registry.jobs import verify
from registry.schemas import documented
from registry.validation.methods import names

router = authenticated_router(prefix="/api/v1/adapters", tags=["adapters"])

_VERSION = "/{namespace}/{name}/versions/{selector}"
PeftTypeQ = Annotated[
    str | None,
    Query(
        max_length=64,
        json_schema_extra=documented(names.search_pattern(), UnknownMethod),
        description="A method, case-insensitive: a peft_type (LORA, IA3, VERA, ...), a LoRA "
        "variant (dora, rslora, adalora) or family:NAME (family:lora, family:orthogonal, ...); "
        "LORA includes DoRA and rsLoRA. Anything else: 400 unknown_method.",
    ),
]
RankQ = Annotated[int | None, Query(ge=1, le=1_000_000)]
StateQ = Annotated[
    str | None, Query(pattern="^(verifying|registered|validated|quarantined|archived)$")
]


def _one(session: SessionDep, ctx: queries.VersionContext, *, detail: bool = True) -> VersionRead:
    return version_reads(session, ctx.namespace.name, ctx.adapter, [ctx.version], detail=detail)[0]


@router.get(
    "",
    response_model=Page[AdapterRead],
    responses=responses(InvalidPageToken, NamespaceNotFound, BaseModelNotFound, UnknownMethod),
)
def list_adapters(
    actor: ActorDep,
    session: SessionDep,
    page: PageDep,
    namespace: NamespaceQ = None,
    peft_type: PeftTypeQ = None,
    base: BaseQ = None,
    rank: RankQ = None,
    state: StateQ = None,
    tag: TagQ = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=64, description="Text the name contains.")
    ] = None,
) -> Page[AdapterRead]:
    """Adapters by namespace and name; ``q`` keeps names holding that text; with filters,
    those having a matching version."""
    cursor = decode_token(page.token, arity=2, types=(str, str))
    rows = queries.list_adapters(
        session,
        actor=actor,
        namespace=namespace,
        filters=queries.VersionFilter(
            peft_type=peft_type, base=base, rank=rank, state=state, tag=tag
        ),
        after=(cursor[0], cursor[1]) if cursor else None,
        limit=page.fetch,
        name_contains=q,
    )
    return page.of(rows, lambda row: adapter_read(*row), key=lambda a: [a.namespace, a.name])


@router.get(
    "/{namespace}/{name}", response_model=AdapterRead, responses=responses(*VERSION_NOT_FOUND)
)
def get_adapter(
    namespace: NamespacePath, name: AdapterPath, actor: ActorDep, session: SessionDep
) -> AdapterRead:
    """One adapter."""
    ns, adapter = queries.get_adapter(session, namespace=namespace, name=name, actor=actor)
    return adapter_read(adapter, ns.name)


@router.post(
    "/{namespace}/{name}/versions",
    status_code=status.HTTP_201_CREATED,
    response_model=VersionRead,
    responses=responses(
        *VERSION_NOT_FOUND,
        BaseModelNotFound,
        UploadNotFound,
        CorruptSafetensors,
        MissingWeights,
        UnknownPeftType,
        InvalidAdapterConfig,
        InconsistentAdapter,
        IncompatibleBase,
        ForbiddenFile,
        DigestMismatch,
        UnhealthyTensors,
        VersionAlreadyExists,
        UriNotAllowed,
    ),
)
def register_version(
    namespace: NamespacePath,
    name: AdapterPath,
    body: VersionCreate,
    slow: SlowWriteDep,
    store: StoreDep,
    manifests: ManifestsDep,
    settings: SettingsDep,
) -> object:
    """Validate the files of an upload session (or an allow-listed S3 prefix) and register them
    as the next version. The adapter is created on its first version.

    Validation, the import and publishing run before the write transaction, which holds only
    the inserts (``catalog/registration.py``): a slow push never blocks other writes."""
    limits = registration.RegistrationLimits.from_settings(settings)
    metadata = registration.VersionMetadata(
        description=body.description,
        tags=tuple(body.tags),
        datasets=tuple(registration.DatasetSpec(d.name, d.digest, d.uri) for d in body.datasets),
        parents=tuple(
            registration.ParentSpec(p.ref, p.relation, p.recipe, p.kind) for p in body.parents
        ),
        git_commit=body.git_commit,
        mlflow_run_id=body.mlflow_run_id,
        training_base_dtype=body.training_base_dtype,
        quantization=body.quantization,
    )
    replayed = slow.replay(body)
    if replayed is not None:
        return replayed
    with slow.reading() as (session, actor):
        plan = registration.plan_version(
            session,
            actor=actor,
            limits=limits,
            namespace=namespace,
            adapter=name,
            base=body.base,
            upload_id=body.upload_id,
            source_uri=body.source_uri,
            metadata=metadata,
        )
    prepared = registration.prepare_version(
        slow.sessions,
        store=store,
        manifests=manifests,
        principal=slow.principal,
        limits=limits,
        plan=plan,
    )

    def produce(session: DbSession) -> VersionRead:
        registered = registration.commit_version(
            session, actor=actor, store=store, prepared=prepared
        )
        c = registered.ctx
        if prepared.unverified:  # a direct upload: hashed off the request path, then available
            verify.enqueue(
                session,
                actor=actor,
                target=f"{c.namespace.name}/{c.adapter.name}",
                version_id=c.version.id,
                files=[(f.name, f.staged.key, f.digest, f.size) for f in prepared.unverified],
            )
        return version_reads(
            session, c.namespace.name, c.adapter, [c.version], detail=True, known=registered.known
        )[0]

    return slow.commit(body, actor, produce, status_code=201)


@router.get(
    "/{namespace}/{name}/versions",
    response_model=Page[VersionRead],
    responses=responses(*VERSION_NOT_FOUND, InvalidPageToken, BaseModelNotFound, UnknownMethod),
)
def list_versions(
    namespace: NamespacePath,
    name: AdapterPath,
    actor: ActorDep,
    session: SessionDep,
    page: PageDep,
    peft_type: PeftTypeQ = None,
    base: BaseQ = None,
    rank: RankQ = None,
    state: StateQ = None,
    tag: TagQ = None,
) -> Page[VersionRead]:
    """Versions newest first, filtered by peft type, base (NAME or NAME@REV), rank, state, tag."""
    cursor = decode_token(page.token, arity=1, types=(int,))
    ns, adapter, rows = queries.list_versions(
        session,
        actor=actor,
        namespace=namespace,
        name=name,
        filters=queries.VersionFilter(
            peft_type=peft_type, base=base, rank=rank, state=state, tag=tag
        ),
        before=cursor[0] if cursor else None,
        limit=page.fetch,
    )
    items = version_reads(session, ns.name, adapter, rows[: page.limit])
    return make_page(items, more=len(rows) > page.limit, key=lambda v: [v.version])


@router.get(_VERSION, response_model=VersionRead, responses=responses(*VERSION_NOT_FOUND))
def get_version(
    namespace: NamespacePath,
    name: AdapterPath,
    selector: SelectorPath,
    actor: ActorDep,
    session: SessionDep,
) -> VersionRead:
    """One version (``vN``, ``latest`` or ``sha256:<digest>``) with files, datasets, warnings."""
    ref = version_ref(namespace, name, selector)
    return _one(session, queries.resolve_version(session, ref=ref, actor=actor))


@router.get(
    _VERSION + "/lineage",
    response_model=list[LineageEdgeRead],
    responses=responses(*VERSION_NOT_FOUND),
)
def get_lineage(
    namespace: NamespacePath,
    name: AdapterPath,
    selector: SelectorPath,
    actor: ActorDep,
    session: SessionDep,
    descendants: bool = False,
) -> list[LineageEdgeRead]:
    """Ancestors (default) or descendants of a version, breadth first."""
    ctx = queries.resolve_version(session, ref=version_ref(namespace, name, selector), actor=actor)
    return lineage_reads(
        session,
        queries.walk_lineage(
            session, actor=actor, version_id=ctx.version.id, descendants=descendants
        ),
    )


@router.post(
    _VERSION + "/tags", response_model=VersionRead, responses=responses(*VERSION_NOT_FOUND)
)
def update_tags(
    namespace: NamespacePath,
    name: AdapterPath,
    selector: SelectorPath,
    body: TagsUpdate,
    ctx: WriteDep,
) -> object:
    """Add and remove tags (labels) on a version."""
    return ctx.idempotent(
        body,
        lambda: _one(
            ctx.session,
            mutations.update_tags(
                ctx.session,
                actor=ctx.actor,
                ref=version_ref(namespace, name, selector),
                add=body.add,
                remove=body.remove,
            ),
        ),
    )


@router.post(
    _VERSION + "/archive",
    response_model=VersionRead,
    responses=responses(*VERSION_NOT_FOUND, InvalidTransition),
)
def archive_version(
    namespace: NamespacePath,
    name: AdapterPath,
    selector: SelectorPath,
    ctx: WriteDep,
    body: ArchiveRequest | None = None,
) -> object:
    """Archive a version: it stays pullable for audit, but can no longer be promoted."""
    return ctx.idempotent(
        body,
        lambda: _one(
            ctx.session,
            mutations.archive_version(
                ctx.session, actor=ctx.actor, ref=version_ref(namespace, name, selector)
            ),
        ),
    )
