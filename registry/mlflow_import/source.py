"""MLflow source URIs: parse them, resolve them on the tracking server, find the adapter.

Accepted forms (nothing else; no percent-encoding, no ``..``):

- ``runs:/<run_id>/<path>``: artifacts of a run (``<path>`` may be empty: the run's root);
- ``models:/<name>/<version>`` and ``models:/<name>@<alias>``: a registered model version;
- ``models:/m-<id>``: an MLflow 3 logged model.

A registered version of MLflow 3 points at a logged model (``model_id``); an older one at its
run's artifacts (``source``: ``runs:/...`` or ``.../<run_id>/artifacts/<path>``).

The adapter is looked for in the resolved folder itself, then in its ``peft/`` folder (what
``mlflow.transformers.log_model`` writes for a PEFT model), then in the Trainer checkpoint
``checkpoint-N/`` with the highest N, then in any other sub-folder (two levels at most). Only
the adapter's own files are fetched (:data:`FETCHED_NAMES`): never a pickle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from registry.errors import InvalidUri, MlflowNoAdapter, MlflowSourceNotFound
from registry.mlflow_import.rest import ArtifactEntry, MlflowRest
from registry.validation.files import CONFIG_NAME, TEXT_EXTRAS, WEIGHTS_NAME

MAX_URI_LENGTH = 1024
#: The only files an import downloads: the peft adapter and harmless text next to it.
FETCHED_NAMES = frozenset({CONFIG_NAME, WEIGHTS_NAME}) | TEXT_EXTRAS

_ID = r"[A-Za-z0-9_\-]{1,64}"
_SEGMENT = r"[A-Za-z0-9._\-+=,]+"
_PATH = re.compile(rf"(?:{_SEGMENT}(?:/{_SEGMENT})*)?")
_RUN = re.compile(rf"runs:/(?P<run>{_ID})(?:/(?P<path>.*))?")
_LOGGED = re.compile(r"models:/(?P<model>m-[0-9a-f]{8,64})")
_NAME = r"[A-Za-z0-9][A-Za-z0-9 ._\-]{0,255}"
_VERSION = re.compile(rf"models:/(?P<name>{_NAME})/(?P<version>[0-9]{{1,10}})")
_ALIAS = re.compile(rf"models:/(?P<name>{_NAME})@(?P<alias>[A-Za-z0-9_\-]{{1,255}})")
_CHECKPOINT = re.compile(r"checkpoint-([0-9]{1,12})")


@dataclass(frozen=True, slots=True)
class SourceUri:
    kind: str  # run | model_version | model_alias | logged_model
    run_id: str | None = None
    path: str = ""
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    model_id: str | None = None


@dataclass(frozen=True, slots=True)
class Metric:
    key: str
    value: float
    step: int
    timestamp: int  # ms since the epoch, as MLflow reports it


@dataclass(frozen=True, slots=True)
class Resolved:
    """Where the artifacts are: a run's (``model_id`` None) or a logged model's."""

    run_id: str | None
    model_id: str | None
    path: str
    model_version: str | None = None  # "name/version" of a registered model version
    metrics: tuple[Metric, ...] = field(default=())

    @property
    def location(self) -> str:
        """A stable key of the artifact folder (idempotency of re-imports)."""
        owner = f"logged-models/{self.model_id}" if self.model_id else f"runs/{self.run_id}"
        return f"{owner}/{self.path}".rstrip("/")


def _invalid(reason: str) -> InvalidUri:
    return InvalidUri("invalid MLflow source URI", context={"reason": reason})


def parse_source_uri(uri: str) -> SourceUri:
    """Check the syntax of ``uri`` (400 ``invalid_uri``); nothing is fetched."""
    if not isinstance(uri, str) or not uri or len(uri) > MAX_URI_LENGTH:
        raise _invalid("length")
    if any(not 0x20 <= ord(ch) <= 0x7E for ch in uri) or any(c in uri for c in "%\\?#"):
        raise _invalid("character")
    if m := _RUN.fullmatch(uri):
        path = (m["path"] or "").strip("/")
        if not _PATH.fullmatch(path) or any(set(s) == {"."} for s in path.split("/") if s):
            raise _invalid("path")
        return SourceUri("run", run_id=m["run"], path=path)
    if m := _LOGGED.fullmatch(uri):
        return SourceUri("logged_model", model_id=m["model"])
    if m := _VERSION.fullmatch(uri):
        return SourceUri("model_version", name=m["name"], version=m["version"])
    if m := _ALIAS.fullmatch(uri):
        return SourceUri("model_alias", name=m["name"], alias=m["alias"])
    raise _invalid("form")


def _str(obj: Any, key: str) -> str | None:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, str) and value else None


def _metrics(items: Any, limit: int) -> tuple[Metric, ...]:
    out = []
    for item in items if isinstance(items, list) else []:
        try:
            out.append(
                Metric(
                    key=str(item["key"]),
                    value=float(item["value"]),
                    step=int(item.get("step") or 0),
                    timestamp=int(item.get("timestamp") or 0),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return tuple(sorted(out, key=lambda m: m.key)[:limit])


def _run_metrics(rest: MlflowRest, run_id: str) -> tuple[str, tuple[Metric, ...]]:
    run = rest.get_json("/runs/get", {"run_id": run_id}, what="run").get("run")
    info = run.get("info") if isinstance(run, dict) else None
    resolved_id = _str(info, "run_id") or run_id
    data = run.get("data") if isinstance(run, dict) else None
    return resolved_id, _metrics(
        data.get("metrics") if isinstance(data, dict) else None, rest.limits.max_metrics
    )


def _from_model_version(rest: MlflowRest, mv: Any, label: str) -> Resolved:
    model_id = _str(mv, "model_id")
    run_id = _str(mv, "run_id")
    source = _str(mv, "source") or ""
    if model_id is None and (m := _LOGGED.fullmatch(source)):
        model_id = m["model"]
    if model_id is not None:
        resolved = _logged_model(rest, model_id)
        return Resolved(resolved.run_id, model_id, "", label, resolved.metrics)
    if m := _RUN.fullmatch(source):
        run_id, path = m["run"], (m["path"] or "").strip("/")
    elif run_id and f"/{run_id}/artifacts/" in source:
        path = source.split(f"/{run_id}/artifacts/", 1)[1].strip("/")
    else:
        raise MlflowNoAdapter(
            "the model version's source is not a run or logged model this registry can read",
            context={"reason": "unsupported_source"},
        )
    if not _PATH.fullmatch(path):
        raise MlflowNoAdapter("unsupported artifact path", context={"reason": "path"})
    run_id, metrics = _run_metrics(rest, run_id)
    return Resolved(run_id, None, path, label, metrics)


def _logged_model(rest: MlflowRest, model_id: str) -> Resolved:
    model = rest.get_json(f"/logged-models/{model_id}", {}, what="logged model").get("model")
    info = model.get("info") if isinstance(model, dict) else None
    run_id = _str(info, "source_run_id")
    if run_id is not None:
        run_id, metrics = _run_metrics(rest, run_id)
    else:
        data = model.get("data") if isinstance(model, dict) else None
        raw = data.get("metrics") if isinstance(data, dict) else None
        metrics = _metrics(raw, rest.limits.max_metrics)
    return Resolved(run_id, model_id, "", None, metrics)


def resolve(rest: MlflowRest, source: SourceUri) -> Resolved:
    """Ask the tracking server what ``source`` names (``mlflow_source_not_found`` if nothing)."""
    if source.kind == "run":
        assert source.run_id is not None
        run_id, metrics = _run_metrics(rest, source.run_id)
        return Resolved(run_id, None, source.path, None, metrics)
    if source.kind == "logged_model":
        assert source.model_id is not None
        return _logged_model(rest, source.model_id)
    assert source.name is not None
    if source.kind == "model_version":
        assert source.version is not None
        params = {"name": source.name, "version": source.version}
        mv = rest.get_json("/model-versions/get", params, what="model version").get("model_version")
    else:
        assert source.alias is not None
        params = {"name": source.name, "alias": source.alias}
        mv = rest.get_json("/registered-models/alias", params, what="model alias").get(
            "model_version"
        )
    label = f"{source.name}/{_str(mv, 'version') or source.version}"
    return _from_model_version(rest, mv, label)


@dataclass(frozen=True, slots=True)
class AdapterFolder:
    path: str
    files: tuple[ArtifactEntry, ...]  # only FETCHED_NAMES, sorted by name


class _Lister:
    """Lists folders of one resolved source within the listing budget."""

    def __init__(self, rest: MlflowRest, resolved: Resolved) -> None:
        self.rest, self.resolved, self.seen = rest, resolved, 0

    def __call__(self, path: str) -> list[ArtifactEntry]:
        entries = self.rest.list_dir(
            run_id=self.resolved.run_id, model_id=self.resolved.model_id, path=path
        )
        self.seen += len(entries)
        if self.seen > self.rest.limits.max_listed_entries:
            raise MlflowNoAdapter(
                "too many artifacts to look through", context={"reason": "too_many_artifacts"}
            )
        return entries


def _name(entry: ArtifactEntry) -> str:
    return entry.path.rstrip("/").rsplit("/", 1)[-1]


def _as_adapter(path: str, entries: list[ArtifactEntry]) -> AdapterFolder | None:
    files = [e for e in entries if not e.is_dir and _name(e) in FETCHED_NAMES]
    if not any(_name(e) == CONFIG_NAME for e in files):
        return None
    return AdapterFolder(path, tuple(sorted(files, key=_name)))


def _ordered_subfolders(entries: list[ArtifactEntry]) -> list[str]:
    """``peft`` first, then ``checkpoint-N`` highest N first, then the rest by name."""
    dirs = [e.path.rstrip("/") for e in entries if e.is_dir]

    def rank(path: str) -> tuple[int, int, str]:
        leaf = path.rsplit("/", 1)[-1]
        if leaf == "peft":
            return (0, 0, path)
        if m := _CHECKPOINT.fullmatch(leaf):
            return (1, -int(m[1]), path)
        return (2, 0, path)

    return sorted(dirs, key=rank)


def locate_adapter(rest: MlflowRest, resolved: Resolved) -> AdapterFolder:
    """The folder holding the adapter (see the module docstring for the search order)."""
    lister = _Lister(rest, resolved)
    root = lister(resolved.path)
    if not root and resolved.path:
        raise MlflowSourceNotFound("no artifacts at that path", context={"path": resolved.path})
    if found := _as_adapter(resolved.path, root):
        return found
    for depth_one in _ordered_subfolders(root):
        entries = lister(depth_one)
        if found := _as_adapter(depth_one, entries):
            return found
        for depth_two in _ordered_subfolders(entries):
            if found := _as_adapter(depth_two, lister(depth_two)):
                return found
    raise MlflowNoAdapter(
        "no PEFT adapter (adapter_config.json) in the MLflow source",
        context={"reason": "no_adapter_config", "path": resolved.path},
    )
