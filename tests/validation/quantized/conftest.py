"""The unquantized tiny Llama every pre-quantized base in these tests is made from."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.maths.tiny import tiny_llama


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Hidden 64, MLP 128, 2 layers, GQA 4/2 heads (q 64x64, k/v 32x64): every linear packs
    into int32 words at 2/3/4/8 bits with group size 32."""
    return tiny_llama(tmp_path_factory.mktemp("qbase"), hidden_size=64, intermediate_size=128)
