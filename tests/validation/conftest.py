"""Fixture locations for the validation tests (no database, no server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from registry.validation import BaseManifest, read_base_dir

from .validation_builders import FIXTURES, Lora, load_adapter


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not (FIXTURES / "MANIFEST.json").is_file():
        pytest.fail(f"peft fixtures not found at {FIXTURES} (set REGISTRY_FIXTURES)")
    return FIXTURES


@pytest.fixture(scope="session")
def fixture_manifest(fixtures_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((fixtures_dir / "MANIFEST.json").read_text())
    return data


@pytest.fixture(scope="session")
def bases(fixtures_dir: Path, fixture_manifest: dict[str, Any]) -> dict[str, BaseManifest]:
    return {
        entry["id"]: read_base_dir(fixtures_dir / entry["path"])
        for entry in fixture_manifest["fixtures"]
        if entry["kind"] == "base"
    }


@pytest.fixture
def llama_lora(fixtures_dir: Path) -> Lora:
    return load_adapter(fixtures_dir / "adapters/llama-lora-r2-qv-notask")
