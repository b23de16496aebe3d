"""Adapter maths run client-side: merge an adapter into its base, compose adapters, aggregate
federated sites; the result written to a directory or registered with its lineage.

Inputs are pulled (digest-verified) into a temporary directory, the computation runs here
(``registry.maths``, torch imported lazily: without it every method raises
``maths_unavailable`` before anything is downloaded), and the result is registered as an ordinary
version whose lineage edges carry the recipe: ``composed_from`` / ``aggregated_from`` per input
(digest, weight, method, parameters, seed) or ``merged_from`` the adapter version and the base
version. The server authorizes such a registration as ``compose_adapters`` /
``aggregate_adapters`` / ``merge_adapter`` and audits it with the inputs' and output's digests.
"""

from __future__ import annotations

import importlib
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from registry.client._direct import _DirectUploads
from registry.client._errors import JSON, ClientError
from registry.client._refs import split_ref

#: ``progress(done, total)`` as the computation advances.
Progress = Callable[[int, int], None]


def _maths(module: str) -> Any:
    """``registry.maths.<module>``, torch checked first (``maths_unavailable``, 501). Imported
    by name so that the client (and the CLI's start-up) never loads torch before it is used."""
    importlib.import_module("registry.maths").require_torch()
    return importlib.import_module(f"registry.maths.{module}")


class _Maths(_DirectUploads):
    """``compose``, ``aggregate`` and ``merge``, computed here on pulled inputs."""

    def compose(
        self,
        adapter: str | None,
        inputs: Sequence[tuple[str, float]],
        *,
        method: str,
        rank: int | None = None,
        density: float | None = None,
        seed: int | None = None,
        majority_sign_method: str = "total",
        to: Path | None = None,
        progress: Progress | None = None,
    ) -> JSON:
        """Compose ``inputs`` (``(REF, weight)``) with ``method`` into a new version of
        ``adapter`` (``NS/NAME``) on their common base; with ``to``, write it there instead
        of registering it. Returns the registered version plus ``"report"`` (or ``{"dir",
        "report"}``)."""
        maths = _maths("compose")

        def run(items: list[Any], out: Path) -> Any:
            return maths.compose(
                items,
                out,
                method=method,
                rank=rank,
                density=density,
                seed=seed,
                majority_sign_method=majority_sign_method,
                progress=progress,
            )

        return self._combine(adapter, inputs, "composed_from", run, to)

    def aggregate(
        self,
        adapter: str | None,
        sites: Sequence[tuple[str, float]],
        *,
        method: str = "stack",
        robust: str = "none",
        max_rank: int | None = None,
        to: Path | None = None,
        progress: Progress | None = None,
    ) -> JSON:
        """Aggregate federated ``sites`` (``(REF, sample count)``) into a new version of
        ``adapter`` (or into ``to``), like :meth:`compose`, with ``aggregated_from`` edges."""
        maths = _maths("aggregate")

        def run(items: list[Any], out: Path) -> Any:
            return maths.aggregate(
                items, out, method=method, robust=robust, max_rank=max_rank, progress=progress
            )

        return self._combine(adapter, sites, "aggregated_from", run, to)

    def merge(
        self,
        ref: str,
        to: Path,
        *,
        base_dir: Path | None = None,
        dtype: str = "auto",
        register_as: str | None = None,
        revision: str | None = None,
        progress: Progress | None = None,
    ) -> JSON:
        """Merge the adapter version ``ref`` into its base (``base_dir``, else the registered
        base's stored checkpoint, pulled) and write the merged checkpoint to ``to``. With
        ``register_as`` (and ``revision``), register it as a new base model revision with its
        weights and ``merged_from`` edges to the adapter version and the base version.
        Returns ``{"dir", "report", "registered", "registered_ref"}`` (the base revision and
        ``NAME@REV``, or None)."""
        if (register_as is None) != (revision is None):
            raise ClientError(
                "usage", 0, "register_as and revision go together", {"register_as": register_as}
            )
        maths = _maths("merge")
        version = self.get_version(ref)
        pinned, base = _pinned(version), str(version["base"])
        with tempfile.TemporaryDirectory(prefix="adapter-registry-merge-") as work:
            adapter_dir = Path(work) / "adapter"
            self.pull(pinned, adapter_dir)
            if base_dir is None:
                base_dir = Path(work) / "base"
                self.pull_base(base, base_dir)
            report = maths.merge(
                adapter_dir,
                base_dir,
                to,
                dtype=dtype,
                progress=progress,
                adapter_ref=pinned,
                adapter_digest=version["digest"],
                base_ref=base,
            )
        result: JSON = {
            "dir": str(to),
            "report": report.to_json(),
            "registered": None,
            "registered_ref": None,
        }
        if register_as is not None and revision is not None:
            recipe = dict(report.recipe)
            parents = [
                {"ref": pinned, "relation": "merged_from", "recipe": recipe},
                {
                    "ref": base,
                    "relation": "merged_from",
                    "kind": "base_model_version",
                    "recipe": recipe,
                },
            ]
            result["registered"] = self.push_base(
                register_as, revision, to, upload_weights=True, parents=parents
            )
            result["registered_ref"] = f"{register_as}@{revision}"
        return result

    def _combine(
        self,
        adapter: str | None,
        inputs: Sequence[tuple[str, float]],
        relation: str,
        run: Callable[[list[Any], Path], Any],
        to: Path | None,
    ) -> JSON:
        """Pull ``inputs``, run the operation into ``to`` (or a temporary directory), and
        register the result as the next version of ``adapter`` unless ``to`` was given."""
        if (adapter is None) == (to is None):
            raise ClientError("usage", 0, "give an adapter (NS/NAME) or a directory, not both")
        target = _target(adapter) if adapter is not None else None
        maths = _maths("combine")
        with tempfile.TemporaryDirectory(prefix="adapter-registry-combine-") as work:
            pulled = [
                self._pull_input(ref, weight, Path(work) / f"input-{i}")
                for i, (ref, weight) in enumerate(inputs)
            ]
            base = _common_base([v for v, _ in pulled])
            items = [
                maths.Input(path, weight, ref=_pinned(v), digest=str(v["digest"]))
                for (v, path), (_, weight) in zip(pulled, inputs, strict=True)
            ]
            out = to if to is not None else Path(work) / "result"
            report = run(items, out)
            if target is None:
                return {"dir": str(out), "report": report.to_json()}
            parents = [
                {"ref": i.ref, "relation": relation, "recipe": _edge_recipe(report.recipe, i)}
                for i in items
            ]
            files = sorted(p for p in out.iterdir() if p.is_file())
            version = self.push(*target, files, {"base": base, "parents": parents})
            return {**version, "report": {**report.to_json(), "out_dir": None}}

    def _pull_input(self, ref: str, weight: float, dest: Path) -> tuple[JSON, Path]:
        version = self.get_version(ref)
        self.pull(_pinned(version), dest)
        return version, dest


def _pinned(version: JSON) -> str:
    return f"{version['namespace']}/{version['adapter']}@v{version['version']}"


def _target(adapter: str) -> tuple[str, str]:
    """``NS/NAME`` (no version) of the adapter a result is registered to."""
    namespace, name, _ = split_ref(adapter)
    if "@" in adapter:
        raise ClientError(
            "invalid_reference", 0, "expected NS/NAME (no version)", {"adapter": adapter[:200]}
        )
    return namespace, name


def _common_base(versions: Sequence[JSON]) -> str:
    """The one registered base of every input (``incompatible_adapters`` otherwise)."""
    if not versions:
        raise ClientError("incompatible_adapters", 422, "no inputs", {"reason": "no_inputs"})
    bases = sorted({str(v["base"]) for v in versions})
    if len(bases) > 1:
        raise ClientError(
            "incompatible_adapters",
            422,
            f"inputs are registered on different bases: {bases}",
            {"reason": "different_bases", "bases": bases},
        )
    return bases[0]


def _edge_recipe(recipe: dict[str, Any], item: Any) -> dict[str, Any]:
    """The recipe one lineage edge carries: the operation, its parameters and seed, and this
    input's digest and weight."""
    parameters = dict(recipe.get("parameters") or {})
    return {
        "operation": recipe.get("operation"),
        "method": recipe.get("method"),
        "implementation": recipe.get("implementation"),
        "parameters": parameters,
        "seed": parameters.get("seed"),
        "ref": item.ref,
        "digest": item.digest,
        "weight": item.weight,
    }
