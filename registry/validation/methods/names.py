"""Every accepted method named in words, its family, and what ``--peft-type`` may say.

The names come from the method tables (:data:`~registry.validation.methods.METHODS`: each
:class:`~registry.validation.methods.spec.Method` has its ``title`` and ``family``) and, for the
methods checked by hand-written code (the LoRA family, IA3, prompt learning) or not yet tabled,
from :data:`HAND_CHECKED` here. A new table in ``METHODS`` is named, searchable and listed in the
README and ``--help`` with no edit to this module.

Search vocabulary (:func:`select_methods`, :func:`search_pattern`), case-insensitive, ``-`` read
as ``_``:

* a ``peft_type`` (``lora``, ``vera``, ``p-tuning``);
* a LoRA variant stored as ``LORA`` plus a config flag (:data:`VARIANTS`: ``dora``, ``rslora``);
* ``family:NAME`` (``family:orthogonal``): every method of that family.

Regenerate the README's "Supported methods" table and the CLI's list of accepted types with
``.venv/bin/python -m registry.validation.methods.names --write``.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.validation.adapterhub import HUB_TYPES
from registry.validation.config import KNOWN_PEFT_TYPES, PEFT_TYPES
from registry.validation.methods import METHODS

#: Methods without a table: ``peft_type -> (title, family)``. A table in ``METHODS`` wins.
HAND_CHECKED: Mapping[str, tuple[str, str]] = {
    "LORA": ("Low-Rank Adaptation (LoRA)", "lora"),
    "ADALORA": ("Adaptive budget allocation for LoRA (AdaLoRA)", "lora"),
    "LOHA": ("Low-rank Hadamard product (LoHa, LyCORIS)", "lora"),
    "LOKR": ("Low-rank Kronecker product (LoKr, LyCORIS)", "lora"),
    "IA3": ("Infused Adapter by Inhibiting and Amplifying Inner Activations (IA3)", "vector"),
    "PREFIX_TUNING": ("Prefix tuning", "prompt"),
    "PROMPT_TUNING": ("Prompt tuning (soft prompts)", "prompt"),
    "P_TUNING": ("P-tuning (prompt encoder)", "prompt"),
    "MULTITASK_PROMPT_TUNING": ("Multitask prompt tuning (MPT)", "prompt"),
    "CPT": ("Context-aware prompt tuning (CPT)", "prompt"),
    "CARTRIDGE": ("Cartridges (a trained KV-cache prefix)", "prompt"),
    "BITFIT": ("BitFit bias-only delta (registry-native)", "bias"),
    "SPARSE_DELTA": ("Sparse weight delta (registry-native, coordinate format)", "sparse"),
    "ADAPTERHUB_SEQ_BN": ("Sequential bottleneck adapter (Pfeiffer, AdapterHub)", "bottleneck"),
    "ADAPTERHUB_DOUBLE_SEQ_BN": ("Double bottleneck adapter (Houlsby, AdapterHub)", "bottleneck"),
    "ADAPTERHUB_PAR_BN": ("Parallel bottleneck adapter (AdapterHub)", "bottleneck"),
    "ADAPTERHUB_COMPACTER": (
        "Compacter: PHM bottleneck adapter (Houlsby, AdapterHub)",
        "bottleneck",
    ),
    "ADAPTERHUB_COMPACTER_PP": ("Compacter++: PHM bottleneck adapter (AdapterHub)", "bottleneck"),
    # family "bottleneck" like every ADAPTERHUB_ type: family:bottleneck matches the prefix
    "ADAPTERHUB_PREFIX_TUNING": ("Prefix tuning (AdapterHub, converted)", "bottleneck"),
    "ADAPTERHUB_FUSION": ("AdapterFusion of named bottleneck adapters (AdapterHub)", "bottleneck"),
}

#: Families by ``peft_type`` prefix, for types named by convention (AdapterHub's modules).
PREFIX_FAMILIES: Mapping[str, tuple[str, str]] = {
    "ADAPTERHUB_": ("AdapterHub bottleneck adapter", "bottleneck"),
}


@dataclass(frozen=True, slots=True)
class Variant:
    """A variant stored under another ``peft_type`` with a boolean config flag set."""

    peft_type: str
    flag: str
    title: str


#: Search names of variants -> how they are stored (``VersionRead.use_dora`` etc.).
VARIANTS: Mapping[str, Variant] = {
    "DORA": Variant("LORA", "use_dora", "Weight-Decomposed Low-Rank Adaptation (DoRA)"),
    "RSLORA": Variant("LORA", "use_rslora", "Rank-Stabilized LoRA (rsLoRA)"),
}

#: LoRA initialisations worth naming (peft ``init_lora_weights``).
_LORA_INITS: Mapping[str, str] = {
    "pissa": "PiSSA",
    "olora": "OLoRA",
    "loftq": "LoftQ",
    "eva": "EVA",
    "corda": "CorDA",
}

#: Families that exist even before a method of theirs is accepted (``family:NAME`` is then an
#: empty result, not an error). Families of tables are added to it.
BASE_FAMILIES: frozenset[str] = frozenset(
    {"lora", "vector", "orthogonal", "bias", "sparse", "prompt", "bottleneck", "other"}
)
FALLBACK_FAMILY = "other"


def accepted_types() -> list[str]:
    """Every ``peft_type`` the validator accepts, sorted."""
    return sorted(KNOWN_PEFT_TYPES | METHODS.keys() | HUB_TYPES)


def method_family(peft_type: str) -> str:
    """The family a type is listed under (``lora``, ``vector``, ...; ``other`` when unknown)."""
    if peft_type in METHODS:
        return METHODS[peft_type].family
    if peft_type in HAND_CHECKED:
        return HAND_CHECKED[peft_type][1]
    for prefix, (_, family) in PREFIX_FAMILIES.items():
        if peft_type.startswith(prefix):
            return family
    return FALLBACK_FAMILY


def _base_title(peft_type: str) -> str:
    if peft_type in METHODS:
        return METHODS[peft_type].title
    if peft_type in HAND_CHECKED:
        return HAND_CHECKED[peft_type][0]
    for prefix, (title, _) in PREFIX_FAMILIES.items():
        if peft_type.startswith(prefix):
            return f"{title} ({peft_type.removeprefix(prefix).lower()})"
    return peft_type


def method_title(peft_type: str, config: Mapping[str, Any] | None = None) -> str:
    """The method in words; for LoRA, the variant the config selects (DoRA, rsLoRA, an
    initialisation such as PiSSA). An unknown type is named by itself."""
    config = config or {}
    if peft_type != "LORA":
        return _base_title(peft_type)
    flags = [v for v in VARIANTS.values() if v.peft_type == "LORA" and config.get(v.flag) is True]
    title = _base_title(peft_type)
    if len(flags) == 1:
        title = flags[0].title
    elif flags:
        title = "DoRA with rank-stabilized scaling (DoRA + rsLoRA)"
    init = config.get("init_lora_weights")
    if isinstance(init, str):
        named = next((n for k, n in _LORA_INITS.items() if init.lower().startswith(k)), None)
        if named is not None:
            title += f", {named} initialisation"
    return title


def known_families() -> frozenset[str]:
    return BASE_FAMILIES | {m.family for m in METHODS.values()}


@dataclass(frozen=True, slots=True)
class MethodSelector:
    """What a ``--peft-type`` term matches: versions whose ``peft_type`` is one of
    ``peft_types`` or starts with one of ``prefixes``, and (when set) whose boolean config
    ``flag`` column is true."""

    peft_types: tuple[str, ...]
    prefixes: tuple[str, ...] = ()
    flag: str | None = None


_TERM = re.compile(r"[A-Za-z0-9_-]+")
_FAMILY = "family:"


def select_methods(term: str) -> MethodSelector | None:
    """The selector for a search term (module docstring), or None when it names no method
    (exactly the terms :func:`search_pattern` describes).

    ``LORA`` selects every LoRA version, DoRA and rsLoRA included (they are LoRA with a flag)."""
    if term[: len(_FAMILY)].lower() == _FAMILY:
        family = term[len(_FAMILY) :]
        if not _TERM.fullmatch(family) or family.lower() not in known_families():
            return None
        family = family.lower()
        members = tuple(sorted(t for t in _method_names() if method_family(t) == family))
        prefixes = tuple(p for p, (_, f) in PREFIX_FAMILIES.items() if f == family)
        return MethodSelector(members, prefixes)
    if not _TERM.fullmatch(term):
        return None
    name = term.upper().replace("-", "_")
    if name in VARIANTS:
        variant = VARIANTS[name]
        return MethodSelector((variant.peft_type,), flag=variant.flag)
    if name in _method_names() or name.startswith(tuple(PREFIX_FAMILIES)):
        return MethodSelector((name,))
    return None


def _method_names() -> set[str]:
    return set(accepted_types()) | PEFT_TYPES | HAND_CHECKED.keys()


def _any_case(word: str) -> str:
    """A regex for ``word`` in any letter case, ``-`` and ``_`` interchangeable."""
    out = []
    for c in word:
        if c.isalpha():
            out.append(f"[{c.upper()}{c.lower()}]")
        else:
            out.append("[-_]" if c in "-_" else re.escape(c))
    return "".join(out)


def search_pattern() -> str:
    """The terms :func:`select_methods` understands, as a regex for the API document (the
    service refuses any other with ``unknown_method``)."""
    names = [_any_case(n) for n in sorted(_method_names() | VARIANTS.keys())]
    names += [_any_case(p) + "[A-Za-z0-9_-]*" for p in PREFIX_FAMILIES]
    families = [_any_case(f) for f in sorted(known_families())]
    return f"^(?:{'|'.join(names)}|{_any_case('family')}:(?:{'|'.join(families)}))$"


def search_names() -> list[str]:
    """Every name ``--peft-type`` understands besides ``family:NAME`` (for error messages)."""
    return sorted({*accepted_types(), *(v.lower() for v in VARIANTS)})


# --- generated docs ----------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "README.md"
CLI_TYPES = ROOT / "registry" / "cli" / "method_types.py"
BEGIN = "<!-- generated: .venv/bin/python -m registry.validation.methods.names --write -->"
END = "<!-- end of generated table -->"


def markdown_table() -> str:
    """README's "Supported methods" table, with the marker lines around it."""
    rows = [BEGIN, "| `peft_type` | method | family |", "| --- | --- | --- |"]
    for peft_type in accepted_types():
        rows.append(f"| `{peft_type}` | {method_title(peft_type)} | {method_family(peft_type)} |")
    for name, variant in VARIANTS.items():
        rows.append(
            f"| `{variant.peft_type}` + `{variant.flag}` (search: `{name.lower()}`) "
            f"| {variant.title} | {method_family(variant.peft_type)} |"
        )
    return "\n".join([*rows, END]) + "\n"


def cli_types_module() -> str:
    """``registry/cli/method_types.py``: the CLI lists accepted types without importing the
    validator (and numpy) for ``--help``."""
    names = "".join(f'    "{t}",\n' for t in accepted_types())
    return (
        '"""Accepted ``peft_type`` values, for ``--help``. GENERATED by\n'
        "``python -m registry.validation.methods.names --write`` (tests/test_docs.py checks it is\n"
        'current); do not edit."""\n\n'
        f"ACCEPTED_PEFT_TYPES: tuple[str, ...] = (\n{names})\n"
    )


def write_docs() -> None:
    """Rewrite the README table (between the markers) and the CLI's list."""
    text = README.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END) + 1
    README.write_text(text[:start] + markdown_table() + text[end:])
    CLI_TYPES.write_text(cli_types_module())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--markdown", action="store_true", help="print the README table")
    parser.add_argument("--write", action="store_true", help="update README.md and the CLI list")
    args = parser.parse_args(argv)
    if args.write:
        write_docs()
    else:
        print(markdown_table(), end="")  # noqa: T201 (a command's output)


if __name__ == "__main__":
    main()
