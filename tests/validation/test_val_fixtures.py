"""Every fixture in MANIFEST.json gives exactly its expected outcome."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from registry.errors import AdapterInvalid
from registry.validation import BaseManifest, ByteSource, FileSource, validate_adapter

from .validation_builders import FIXTURES


def _adapter_ids() -> list[str]:
    path = FIXTURES / "MANIFEST.json"
    if not path.is_file():
        return []
    data = json.loads(path.read_text())
    return [e["id"] for e in data["fixtures"] if e["kind"] == "adapter"]


def _entry(manifest: dict[str, Any], fixture_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(e for e in manifest["fixtures"] if e["id"] == fixture_id)
    return found


def _files(path: Path) -> dict[str, ByteSource]:
    return {p.name: FileSource(p) for p in sorted(path.iterdir()) if p.is_file()}


@pytest.mark.parametrize("fixture_id", _adapter_ids())
def test_fixture_adapter_gives_expected_outcome(
    fixture_id: str,
    fixtures_dir: Path,
    fixture_manifest: dict[str, Any],
    bases: dict[str, BaseManifest],
) -> None:
    entry = _entry(fixture_manifest, fixture_id)
    files = _files(fixtures_dir / entry["path"])
    if entry["expected"] == "valid":
        report = validate_adapter(files, base=bases[entry["base"]])
        assert report.checked_against_base
        assert report.peft_type == entry["peft_type"]
        assert report.tensor_count == entry["tensor_count"]
        assert report.trainable_params == entry["parameter_count"]
        assert report.base_model_name_or_path == entry["base_model_name_or_path"]
        assert report.dtype == "F32"
        assert report.files == {name: info["bytes"] for name, info in entry["files"].items()}
        if entry.get("target_modules_resolved") is not None:
            assert report.target_modules == sorted(entry["target_modules_resolved"])
        assert report.warnings == []
        json.dumps(report.to_json())  # JSON-ready
    else:
        with pytest.raises(AdapterInvalid) as info:
            validate_adapter(files, base=bases[entry["base"]])
        assert info.value.code == entry["expected_error"]
        assert info.value.context["reason"] == entry["error_detail"]


@pytest.mark.parametrize("fixture_id", _adapter_ids())
def test_fixture_adapter_without_base_fails_only_on_its_own_defects(
    fixture_id: str, fixtures_dir: Path, fixture_manifest: dict[str, Any]
) -> None:
    entry = _entry(fixture_manifest, fixture_id)
    files = _files(fixtures_dir / entry["path"])
    if entry["expected"] == "valid" or entry["expected_error"] == "incompatible_base":
        report = validate_adapter(files, base=None)
        assert not report.checked_against_base
    else:
        with pytest.raises(AdapterInvalid) as info:
            validate_adapter(files, base=None)
        assert info.value.code == entry["expected_error"]


def test_fixture_llama_adapter_on_gpt2_base_names_missing_modules(
    fixtures_dir: Path, bases: dict[str, BaseManifest]
) -> None:
    files = _files(fixtures_dir / "broken/llama-lora-names-gpt2-base")
    with pytest.raises(AdapterInvalid) as info:
        validate_adapter(files, base=bases["tiny-gpt2"])
    assert info.value.context["module"] == "model.layers.0.self_attn.q_proj"
    assert len(info.value.context["missing"]) == 4


def test_fixture_valid_llama_adapters_fail_on_gpt2_base(
    fixtures_dir: Path, bases: dict[str, BaseManifest]
) -> None:
    with pytest.raises(AdapterInvalid) as info:
        validate_adapter(_files(fixtures_dir / "adapters/llama-dora-r4"), base=bases["tiny-gpt2"])
    assert info.value.code == "incompatible_base"
