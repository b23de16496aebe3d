"""``adapters convert``: a pickle weights file becomes safetensors locally, and the result
validates; a pickle that is not a dict of tensors is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from registry.cli import app
from registry.errors import ForbiddenFile
from registry.validation.files import check_file_allowed


def _pickle_dir(tmp_path: Path, name: str = "pytorch_adapter.bin") -> Path:
    src = tmp_path / "src"
    src.mkdir()
    tensors = {"bert.encoder.layer.0.output.adapters.a.adapter_down.0.weight": torch.ones(4, 8)}
    torch.save(tensors, src / name)
    (src / "adapter_config.json").write_text(json.dumps({"name": "a"}))
    return src


def test_convert_to_out_dir(tmp_path: Path) -> None:
    src = _pickle_dir(tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["adapters", "convert", str(src), "--out", str(out), "-o", "json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"dir": str(out), "written": ["adapter.safetensors"]}
    loaded = load_file(str(out / "adapter.safetensors"))
    assert torch.equal(
        loaded["bert.encoder.layer.0.output.adapters.a.adapter_down.0.weight"], torch.ones(4, 8)
    )
    assert (out / "adapter_config.json").is_file()
    assert not (out / "pytorch_adapter.bin").exists()
    assert (src / "pytorch_adapter.bin").is_file()


def test_convert_in_place_peft(tmp_path: Path) -> None:
    src = _pickle_dir(tmp_path, "adapter_model.bin")
    result = CliRunner().invoke(app, ["adapters", "convert", str(src)])
    assert result.exit_code == 0, result.output
    assert (src / "adapter_model.safetensors").is_file()
    assert not (src / "adapter_model.bin").exists()


def test_convert_refuses_non_tensor_pickle(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    torch.save({"a": [1, 2]}, src / "pytorch_adapter.bin")
    result = CliRunner().invoke(app, ["adapters", "convert", str(src), "-o", "json"])
    assert result.exit_code != 0
    assert json.loads(result.output)["error"] == "invalid_request"
    assert not (src / "adapter.safetensors").exists()


def test_convert_nothing_to_convert(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["adapters", "convert", str(tmp_path), "-o", "json"])
    assert json.loads(result.output)["error"] == "invalid_request"


def test_adapterhub_pickle_refusal_names_the_fix() -> None:
    with pytest.raises(ForbiddenFile) as info:
        check_file_allowed("pytorch_adapter.bin", b"PK\x03\x04" + b"\x00" * 508)
    assert info.value.reason == "pickle"
    assert "use_safetensors=True" in info.value.detail
    assert "adapters convert" in info.value.detail


def test_shared_tensors_keep_one_name_each(tmp_path: Path) -> None:
    """``adapters`` pickles prefix tuning with one tensor under many names; safetensors refuses
    shared memory, so the shortest name is kept, and a partly overlapping view becomes a copy."""
    src = tmp_path / "src"
    src.mkdir()
    pool = torch.arange(12.0).reshape(3, 4)
    torch.save(
        {"p.w": pool, "layer.0.pool.p.w": pool, "layer.1.pool.p.w": pool, "p.row": pool[1]},
        src / "pytorch_adapter.bin",
    )
    result = CliRunner().invoke(app, ["adapters", "convert", str(src)])
    assert result.exit_code == 0, result.output
    loaded = load_file(str(src / "adapter.safetensors"))
    assert sorted(loaded) == ["p.row", "p.w"]
    assert torch.equal(loaded["p.w"], pool)
    assert torch.equal(loaded["p.row"], pool[1])


def test_a_real_prefix_tuning_pickle_converts_and_validates(tmp_path: Path) -> None:
    from registry.validation import validate_adapter
    from registry.validation.manifest import read_base_dir
    from registry.validation.source import ByteSource, FileSource

    hub = Path(__file__).parents[1] / "validation" / "hub" / "fixtures"
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["adapters", "convert", str(hub / "prefix_pickle"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    files: dict[str, ByteSource] = {p.name: FileSource(p) for p in out.iterdir()}
    report = validate_adapter(files, base=read_base_dir(hub / "bert-base"))
    assert (report.peft_type, report.r) == ("ADAPTERHUB_PREFIX_TUNING", 5)
