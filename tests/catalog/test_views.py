"""Response bodies built from rows (``registry/catalog/views.py``): the schema is the whitelist."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from registry.catalog.views import _read
from registry.schemas import FileRead


def test_only_the_schema_fields_are_read_and_computed_ones_win() -> None:
    row = SimpleNamespace(name="w.safetensors", digest="ab" * 32, size=3, secret="s3cr3t")
    body = _read(FileRead, row, digest=f"sha256:{row.digest}")
    assert body.model_dump() == {
        "name": "w.safetensors",
        "digest": f"sha256:{'ab' * 32}",
        "size": 3,
    }


def test_a_computed_field_the_schema_lacks_is_a_programming_error() -> None:
    row = SimpleNamespace(name="w", digest="d", size=1)
    with pytest.raises(TypeError, match="digets"):
        _read(FileRead, row, digets="sha256:d")


def test_a_field_neither_on_the_row_nor_computed_fails_loudly() -> None:
    with pytest.raises(AttributeError, match="size"):
        _read(FileRead, SimpleNamespace(name="w"), digest="sha256:d")
