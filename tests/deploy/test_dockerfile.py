"""The root Dockerfile's rules, read as text (no container engine exists here to build it)."""

from __future__ import annotations

import re

from tests.deploy.chart import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
INSTRUCTIONS = [
    line.strip()
    for line in re.sub(r"\\\n", " ", DOCKERFILE).splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]


def instructions(keyword: str) -> list[str]:
    return [i for i in INSTRUCTIONS if i.split(maxsplit=1)[0].upper() == keyword]


def test_base_images_are_tagged_and_never_latest() -> None:
    images = [i.split()[1] for i in instructions("FROM")]
    assert len(images) == 2, "a build stage and a runtime stage"
    for image in images:
        assert ":" in image, f"untagged base image {image}"
        assert not image.endswith(":latest"), image
        assert image.startswith("python:3.11-slim"), image
    assert "latest" not in DOCKERFILE.lower().replace("content_type_latest", "")


def test_a_wheel_is_built_then_installed_with_the_constraints() -> None:
    runs = instructions("RUN")
    assert any("pip wheel" in r for r in runs)
    installs = [r for r in runs if "pip install" in r]
    assert installs, "no pip install"
    for install in installs:
        assert re.search(r"-c \S*constraints\.txt", install), install
    assert any("--from=build" in c for c in instructions("COPY"))


def test_it_runs_as_a_non_root_user() -> None:
    users = instructions("USER")
    assert users, "no USER instruction"
    user = users[-1].split()[1].split(":")[0]
    assert user not in {"root", "0"}
    # The chart's runAsUser.
    assert user == "10001"


def test_it_serves_on_all_interfaces() -> None:
    entry = " ".join(instructions("ENTRYPOINT") + instructions("CMD"))
    assert '"adapter-registry"' in entry
    assert '"serve"' in entry
    assert '"--host", "0.0.0.0"' in entry


def test_the_image_installs_only_the_wheel() -> None:
    """Everything the server needs at run time (migrations, policies, console) is in the wheel
    (tests/deploy/test_wheel.py): the runtime stage copies no source tree beside it."""
    copies = instructions("COPY")
    runtime = copies[next(i for i, c in enumerate(copies) if "--from=build" in c) :]
    assert all(c.split()[1] in {"constraints.txt", "--from=build"} for c in runtime), runtime


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "var", "tests"} <= set(ignored)
