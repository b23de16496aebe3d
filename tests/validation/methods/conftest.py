from __future__ import annotations

from pathlib import Path

import pytest

from tests.maths.tiny import tiny_gpt2, tiny_llama


@pytest.fixture(scope="session")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama (hidden 32, 2 layers, q 32x32, k/v 16x32, MLP 64; vocab 128)."""
    return tiny_llama(tmp_path_factory.mktemp("methods-base"))


@pytest.fixture(scope="session")
def gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GPT-2 (Conv1D layers stored [in, out], tied lm_head)."""
    return tiny_gpt2(tmp_path_factory.mktemp("methods-base"))
