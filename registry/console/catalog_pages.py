"""Console catalog pages: adapters (search by name, filters by method, base, state and tag,
keyset pages), an adapter's versions, and a version with its files and digests (download
links), configuration, evaluations and lineage graph. The same queries as the API's catalog
routes, with the signed-in caller's ``Actor``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from registry.api.routes._common import blob_response
from registry.catalog import files, queries
from registry.catalog.evaluations import list_evaluations
from registry.catalog.namespaces import list_namespaces
from registry.catalog.views import adapter_read, evaluation_reads, lineage_reads, version_reads
from registry.console.lineage_graph import graph
from registry.console.web import error_page, page
from registry.errors import RegistryError

router = APIRouter(prefix="/console/catalog", include_in_schema=False)
PAGE = 50
_Limit = Annotated[int, Query(ge=1, le=200)]
_Q = Annotated[str | None, Query(max_length=128)]
_Name = Annotated[str, Path(max_length=128)]


def _or_none(value: str | None) -> str | None:
    return value or None


@router.get("")
def adapters(
    request: Request,
    ns: _Q = None,
    q: Annotated[str | None, Query(max_length=64)] = None,
    peft_type: _Q = None,
    base: _Q = None,
    state: _Q = None,
    tag: _Q = None,
    after: Annotated[str | None, Query(max_length=260)] = None,
    limit: _Limit = PAGE,
) -> Response:
    filters = {"ns": ns, "q": q, "peft_type": peft_type, "base": base, "state": state, "tag": tag}
    try:
        with page(request) as p:
            cursor = tuple(after.split("/", 1)) if after and "/" in after else None
            rows = queries.list_adapters(
                p.session,
                actor=p.actor,
                namespace=_or_none(ns),
                filters=queries.VersionFilter(
                    peft_type=_or_none(peft_type),
                    base=_or_none(base),
                    state=_or_none(state),
                    tag=_or_none(tag),
                ),
                after=(cursor[0], cursor[1]) if cursor else None,
                limit=limit + 1,
                name_contains=_or_none(q),
            )
            items = [adapter_read(a, namespace) for a, namespace in rows[:limit]]
            more = f"{items[-1].namespace}/{items[-1].name}" if len(rows) > limit else None
            spaces = list_namespaces(p.session, actor=p.actor, after=None, limit=500)
            return p.render(
                "catalog.html",
                limit=limit,
                adapters=items,
                more=more,
                filters=filters,
                namespaces=[n.name for n in spaces],
            )
    except RegistryError as exc:
        return error_page(request, exc)


@router.get("/{namespace}/{name}")
def adapter(
    request: Request,
    namespace: _Name,
    name: _Name,
    peft_type: _Q = None,
    state: _Q = None,
    tag: _Q = None,
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: _Limit = PAGE,
) -> Response:
    try:
        with page(request) as p:
            ns, found, rows = queries.list_versions(
                p.session,
                actor=p.actor,
                namespace=namespace,
                name=name,
                filters=queries.VersionFilter(
                    peft_type=_or_none(peft_type), state=_or_none(state), tag=_or_none(tag)
                ),
                before=before,
                limit=limit + 1,
            )
            versions = version_reads(p.session, ns.name, found, rows[:limit])
            return p.render(
                "adapter.html",
                limit=limit,
                adapter=adapter_read(found, ns.name),
                versions=versions,
                more=versions[-1].version if len(rows) > limit else None,
                filters={"peft_type": peft_type, "state": state, "tag": tag},
            )
    except RegistryError as exc:
        return error_page(request, exc)


@router.get("/{namespace}/{name}/{selector}")
def version(request: Request, namespace: _Name, name: _Name, selector: _Name) -> Response:
    ref = f"{namespace}/{name}@{selector}"
    try:
        with page(request) as p:
            ctx = queries.resolve_version(p.session, ref=ref, actor=p.actor)
            [read] = version_reads(
                p.session, ctx.namespace.name, ctx.adapter, [ctx.version], detail=True
            )
            _, scores = list_evaluations(
                p.session, actor=p.actor, ref=read.ref, suite=None, after=None, limit=200
            )
            evaluations = evaluation_reads(p.session, read.ref, scores)
            walk = {
                down: lineage_reads(
                    p.session,
                    queries.walk_lineage(
                        p.session, actor=p.actor, version_id=ctx.version.id, descendants=down
                    ),
                )
                for down in (False, True)
            }
            return p.render(
                "version.html",
                v=read,
                evaluations=evaluations,
                lineage=graph(read.ref, walk[False], walk[True]),
                edges=[*walk[False], *walk[True]],
            )
    except RegistryError as exc:
        return error_page(request, exc)


@router.get("/{namespace}/{name}/{selector}/files/{file_name}")
def download(
    request: Request, namespace: _Name, name: _Name, selector: _Name, file_name: _Name
) -> Response:
    """A version's file, streamed from the store with its digest (as the API's download)."""
    try:
        with page(request) as p:
            found = files.get_version_file(
                p.session, actor=p.actor, ref=f"{namespace}/{name}@{selector}", name=file_name
            )
    except RegistryError as exc:
        return error_page(request, exc)
    return blob_response(request.app.state.store, found.digest, found.name)
