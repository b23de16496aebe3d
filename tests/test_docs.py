"""The docs cannot drift from the code, nor point outside the repository.

* README.md's configuration table is the settings model, row for row.
* Every relative link of README.md, CONTRIBUTING.md and docs/ resolves to a file (and, for a
  ``#fragment``, a heading) inside the repository; no path in their prose climbs out of it.
* docs/architecture.md's Packages table names every package of registry/, and nothing else.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from registry.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def settings_table() -> str:
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for group, field in Settings.model_fields.items():
        model = field.annotation
        assert isinstance(model, type)
        assert issubclass(model, BaseModel)
        for name, f in model.model_fields.items():
            default = f.get_default(call_default_factory=True)
            shown = default.as_posix() if isinstance(default, Path) else default
            assert f.description, f"{group}.{name} has no description"
            rows.append(
                f"| `REGISTRY_{group.upper()}__{name.upper()}` | `{shown}` | {f.description} |"
            )
    return "\n".join(rows) + "\n"


def test_readme_configuration_table_is_the_settings_model() -> None:
    assert settings_table() in README.read_text(), (
        "README.md's configuration table differs from registry/settings.py; replace it with "
        "tests.test_docs.settings_table()"
    )


# --- links: every relative link in the docs resolves to a file inside the repository ---------

ROOT = README.parent
FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$", re.MULTILINE)
HTML_LINK = re.compile(r"<(?:a|img)\s[^>]*?(?:href|src)=\"([^\"]+)\"", re.IGNORECASE)
# A path in prose (a code span or plain text) that starts by climbing out of its directory.
CLIMBING_PATH = re.compile(r"(?<![\w./-])((?:\.\./)+[^\s`'\")\]]*)")
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)
HTML_ANCHOR = re.compile(r"<a\s[^>]*?(?:id|name)=\"([^\"]+)\"", re.IGNORECASE)


def doc_files() -> list[Path]:
    """The repository's own prose: README, CONTRIBUTING and everything under docs/."""
    files = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [f for f in files if f.is_file()]


def prose(text: str) -> str:
    """``text`` without its fenced code blocks (commands, not links)."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: link syntax and code marks dropped, lower case,
    punctuation removed (``-`` and ``_`` kept), spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"[^\w\- ]", "", text.replace("`", "").lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = prose(path.read_text())
    found: set[str] = set(HTML_ANCHOR.findall(text))
    seen: dict[str, int] = {}
    for heading in HEADING.findall(text):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def link_problems(path: Path, root: Path = ROOT) -> list[str]:
    """Why each relative link (or climbing path) of ``path`` does not lead to a file inside
    ``root``."""
    text = prose(path.read_text())
    targets = [
        *INLINE_LINK.findall(text),
        *REFERENCE_LINK.findall(text),
        *HTML_LINK.findall(text),
    ]
    problems = []
    for target in targets:
        if SCHEME.match(target) or target.startswith("//"):
            continue  # a URL: not a file of this repository
        file_part, _, fragment = target.partition("#")
        if file_part.startswith("/"):
            problems.append(f"{target}: absolute path (write it relative to {path.name})")
            continue
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.is_relative_to(root):
            problems.append(f"{target}: outside the repository")
        elif not resolved.exists():
            problems.append(f"{target}: no such file")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            problems.append(f"{target}: no heading with anchor #{fragment}")
    for climbing in CLIMBING_PATH.findall(INLINE_LINK.sub("", text)):
        resolved = (path.parent / climbing).resolve()
        if not (resolved.is_relative_to(root) and resolved.exists()):
            problems.append(f"{climbing}: points outside the repository (or to no file in it)")
    return problems


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(path: Path) -> None:
    assert not link_problems(path), f"{path.relative_to(ROOT)}: {link_problems(path)}"


def test_link_check_catches_what_it_must(tmp_path: Path) -> None:
    """The checker itself: a broken link, an escaping link or path, a missing anchor."""
    page = ROOT / "docs" / "architecture.md"
    assert "packages" in anchors(page)
    bad = tmp_path / "bad.md"
    bad.write_text(
        "[a](missing.md) [b](../../etc/passwd) see `../shared/DESIGN.md`\n"
        f"[c]({page}) [d](https://example.com) [e](#nowhere)\n"
        "```\nF=../shared/fixtures  # commands in fences are not links\n```\n"
    )
    problems = link_problems(bad, root=tmp_path)
    assert len(problems) == 5, problems
    assert any("missing.md: no such file" in p for p in problems)
    assert any("../shared/DESIGN.md: points outside" in p for p in problems)
    assert any("absolute path" in p for p in problems)
    assert any("#nowhere" in p for p in problems)


# --- docs/architecture.md names every package of registry/, and only those ------------------

ARCHITECTURE = ROOT / "docs" / "architecture.md"
PACKAGE_ROW = re.compile(r"^\| `registry/(\w+)(/|\.py)` \|", re.MULTILINE)


def documented() -> tuple[set[str], set[str]]:
    """(packages, modules) named in the Packages table of docs/architecture.md."""
    table = ARCHITECTURE.read_text().split("## Packages", 1)[1].split("\n## ", 1)[0]
    rows = PACKAGE_ROW.findall(table)
    return {n for n, kind in rows if kind == "/"}, {n for n, kind in rows if kind == ".py"}


def packages_on_disk() -> set[str]:
    return {p.parent.name for p in (ROOT / "registry").glob("*/__init__.py")}


def test_every_documented_package_exists() -> None:
    packages, modules = documented()
    assert len(packages) >= 10, "the Packages table of docs/architecture.md did not parse"
    missing = sorted(packages - packages_on_disk())
    missing += sorted(f"{m}.py" for m in modules if not (ROOT / "registry" / f"{m}.py").is_file())
    assert not missing, f"docs/architecture.md names what registry/ lacks: {missing}"


def test_every_package_is_documented() -> None:
    undocumented = sorted(packages_on_disk() - documented()[0])
    assert not undocumented, f"add a row to docs/architecture.md's Packages table: {undocumented}"


def test_architecture_diagram_draws_the_floors_the_layering_test_holds() -> None:
    """The domain and ground-floor lines of the diagram are tests/test_layering.py's order."""
    from tests.test_layering import DOMAIN_ORDER, GROUND_FLOOR

    diagram = ARCHITECTURE.read_text().split("```", 2)[1]
    domains = diagram.split("domains", 1)[1].split("(each may", 1)[0]
    ground = diagram.split("ground floor", 1)[1]
    assert re.findall(r"(\w+)/", domains) == DOMAIN_ORDER
    assert re.findall(r"\b(\w+)/?", ground.strip()) == GROUND_FLOOR


# --- supported methods: README's table and the CLI's list are generated from the method tables

REGENERATE = ".venv/bin/python -m registry.validation.methods.names --write"


def test_readme_supported_methods_table_is_current() -> None:
    from registry.validation.methods import names

    assert names.markdown_table() in README.read_text(), (
        f"README.md's 'Supported methods' table is out of date: run `{REGENERATE}`"
    )


def test_cli_list_of_accepted_types_is_current() -> None:
    from registry.validation.methods import names

    assert names.CLI_TYPES.read_text() == names.cli_types_module(), (
        f"registry/cli/method_types.py is out of date: run `{REGENERATE}`"
    )
