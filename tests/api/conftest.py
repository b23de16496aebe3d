"""API test helpers: a base model and a namespace ready for pushes."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.factories.catalog import create_namespace, register_base, unique
from tests.fixtures.peft import PEFT_FIXTURES


@pytest.fixture
def gpt2_base(client: TestClient) -> str:
    return register_base(client, PEFT_FIXTURES / "bases" / "tiny-gpt2", name=unique("gpt2"))


@pytest.fixture
def namespace(client: TestClient) -> str:
    return create_namespace(client)


@pytest.fixture
def adapter_variant(tmp_path: Path) -> Callable[[int], Path]:
    """A valid gpt2 LoRA whose README differs per ``n`` (same weights, distinct digest)."""

    def make(n: int) -> Path:
        target = tmp_path / f"variant-{n}"
        shutil.copytree(PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn", target)
        (target / "README.md").write_text(f"variant {n}\n")
        return target

    return make
