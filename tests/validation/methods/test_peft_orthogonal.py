"""OFT, BOFT and HRA: real peft adapters validate; each broken variant gives its code and reason."""

from __future__ import annotations

import warnings
from pathlib import Path

import peft
import pytest

from tests.validation.methods.conv_base import PATCH, save_conv_adapter, tiny_vit
from tests.validation.methods.method_builders import (
    add,
    assert_error,
    build,
    drop,
    invalid_dir,
    reshape,
    set_key,
    validate_dir,
    variant,
)

Q = "base_model.model.model.layers.0.self_attn.q_proj"
TARGETS = ["q_proj", "v_proj", "down_proj"]


@pytest.fixture(scope="module")
def oft(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.OFTConfig(r=0, oft_block_size=8, target_modules=TARGETS)
    return build(llama, config, tmp_path_factory.mktemp("oft") / "a")


def test_oft_validates_with_and_without_its_base(oft: Path, llama: Path) -> None:
    report = validate_dir(oft, llama)
    assert report.peft_type == "OFT"
    assert report.checked_against_base
    # q/v: 32 inputs in 4 blocks of 8 (28 free entries each); down: 64 inputs in 8 blocks.
    assert report.trainable_params == 2 * (4 * 28 + 4 * 28 + 8 * 28)
    assert validate_dir(oft, None).target_modules == report.target_modules


@pytest.mark.parametrize(
    ("r", "block", "share"), [(4, 0, False), (0, 12, False), (0, 8, True), (3, 0, True)]
)
def test_oft_block_count_nearest_divisor_and_shared_blocks(
    llama: Path, tmp_path: Path, r: int, block: int, share: bool
) -> None:
    config = peft.OFTConfig(
        r=r, oft_block_size=block, block_share=share, target_modules=["q_proj", "down_proj"]
    )
    with warnings.catch_warnings():  # peft warns when it moves a size to a divisor
        warnings.simplefilter("ignore")
        adapter = build(llama, config, tmp_path / "a")
    assert validate_dir(adapter, llama).peft_type == "OFT"
    assert validate_dir(adapter, None).peft_type == "OFT"


def test_oft_broken_variants(oft: Path, llama: Path, tmp_path: Path) -> None:
    blocks = variant(oft, tmp_path / "blocks", tensors=reshape("q_proj.oft_R.weight", (8, 6)))
    assert_error(invalid_dir(blocks, llama), "incompatible_base", "shape_mismatch")
    flat = variant(oft, tmp_path / "flat", tensors=reshape("q_proj.oft_R.weight", (112,)))
    assert_error(invalid_dir(flat, None), "inconsistent_adapter", "shape_mismatch")
    share = variant(oft, tmp_path / "share", config=set_key("block_share", True))
    assert_error(invalid_dir(share, None), "inconsistent_adapter", "shape_mismatch")
    extra = variant(oft, tmp_path / "extra", tensors=add(f"{Q}.hra_u", (32, 8)))
    assert_error(invalid_dir(extra, None), "inconsistent_adapter", "unexpected_tensor")
    bad = variant(oft, tmp_path / "bad", config=set_key("oft_block_size", "8"))
    assert_error(invalid_dir(bad, None), "invalid_adapter_config", "schema")
    share_type = variant(oft, tmp_path / "share_type", config=set_key("block_share", 1))
    assert_error(invalid_dir(share_type, None), "invalid_adapter_config", "schema")


@pytest.fixture(scope="module")
def boft(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.BOFTConfig(boft_block_size=4, target_modules=TARGETS)
    return build(llama, config, tmp_path_factory.mktemp("boft") / "a")


def test_boft_validates_by_block_size_and_by_block_count(
    boft: Path, llama: Path, tmp_path: Path
) -> None:
    report = validate_dir(boft, llama)
    assert (report.peft_type, len(report.target_modules)) == ("BOFT", 6)
    assert validate_dir(boft, None).trainable_params == report.trainable_params
    config = peft.BOFTConfig(
        boft_block_size=0, boft_block_num=4, boft_n_butterfly_factor=2, target_modules=TARGETS
    )
    by_count = build(llama, config, tmp_path / "count")
    assert validate_dir(by_count, llama).peft_type == "BOFT"
    square = variant(by_count, tmp_path / "square", tensors=reshape("q_proj.boft_R", (1, 4, 8, 4)))
    assert_error(invalid_dir(square, None), "inconsistent_adapter", "shape_mismatch")
    count = variant(by_count, tmp_path / "count2", tensors=reshape("q_proj.boft_R", (1, 2, 16, 16)))
    assert_error(invalid_dir(count, None), "inconsistent_adapter", "shape_mismatch")


def test_boft_broken_variants(boft: Path, llama: Path, tmp_path: Path) -> None:
    size = variant(boft, tmp_path / "size", tensors=reshape("q_proj.boft_R", (1, 4, 8, 8)))
    assert_error(invalid_dir(size, None), "inconsistent_adapter", "shape_mismatch")
    blocks = variant(boft, tmp_path / "blocks", tensors=reshape("q_proj.boft_R", (1, 4, 4, 4)))
    assert_error(invalid_dir(blocks, llama), "incompatible_base", "shape_mismatch")
    scale = variant(boft, tmp_path / "scale", tensors=reshape("v_proj.boft_s", (32, 1)))
    assert_error(invalid_dir(scale, llama), "incompatible_base", "shape_mismatch")
    no_s = variant(boft, tmp_path / "no_s", tensors=drop("q_proj.boft_s"))
    assert_error(invalid_dir(no_s, None), "inconsistent_adapter", "missing_tensor")
    extra = variant(boft, tmp_path / "extra", tensors=add(f"{Q}.oft_R.weight", (4, 28)))
    assert_error(invalid_dir(extra, None), "inconsistent_adapter", "unexpected_tensor")
    bad = variant(boft, tmp_path / "bad", config=set_key("boft_block_size", 4.0))
    assert_error(invalid_dir(bad, None), "invalid_adapter_config", "schema")


@pytest.fixture(scope="module")
def hra(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.HRAConfig(r=4, target_modules=TARGETS)
    return build(llama, config, tmp_path_factory.mktemp("hra") / "a")


def test_hra_validates_with_and_without_its_base(hra: Path, llama: Path) -> None:
    report = validate_dir(hra, llama)
    assert (report.peft_type, report.r) == ("HRA", 4)
    assert report.trainable_params == 2 * (32 * 4 + 32 * 4 + 64 * 4)
    assert validate_dir(hra, None).target_modules == report.target_modules


def test_hra_broken_variants(hra: Path, llama: Path, tmp_path: Path) -> None:
    rank = variant(hra, tmp_path / "rank", tensors=reshape("q_proj.hra_u", (32, 8)))
    assert_error(invalid_dir(rank, None), "inconsistent_adapter", "shape_mismatch")
    fan_in = variant(hra, tmp_path / "fan_in", tensors=reshape("down_proj.hra_u", (32, 4)))
    assert_error(invalid_dir(fan_in, llama), "incompatible_base", "shape_mismatch")
    extra = variant(hra, tmp_path / "extra", tensors=add(f"{Q}.hra_v", (32, 4)))
    assert_error(invalid_dir(extra, None), "inconsistent_adapter", "unexpected_tensor")
    bad = variant(hra, tmp_path / "bad", config=set_key("r", -4))
    assert_error(invalid_dir(bad, None), "invalid_adapter_config", "schema")


def test_deft_on_linear_and_conv1d_bases(llama: Path, gpt2: Path, tmp_path: Path) -> None:
    adapter = build(llama, peft.DeftConfig(r=8, target_modules=TARGETS), tmp_path / "llama")
    report = validate_dir(adapter, llama)
    assert (report.peft_type, report.r) == ("DEFT", 8)
    assert validate_dir(adapter, None).trainable_params == report.trainable_params
    conv1d = build(gpt2, peft.DeftConfig(r=4, target_modules=["c_attn"]), tmp_path / "gpt2")
    assert validate_dir(conv1d, gpt2).trainable_params == 2 * (96 * 4 + 4 * 32)
    out = variant(conv1d, tmp_path / "out", tensors=reshape("c_attn.deft_P", (32, 4)))
    assert_error(invalid_dir(out, gpt2), "incompatible_base", "shape_mismatch")
    rank = variant(adapter, tmp_path / "rank", tensors=reshape("q_proj.deft_R", (4, 32)))
    assert_error(invalid_dir(rank, None), "inconsistent_adapter", "shape_mismatch")
    no_r = variant(adapter, tmp_path / "no_r", tensors=drop("q_proj.deft_R"))
    assert_error(invalid_dir(no_r, None), "inconsistent_adapter", "missing_tensor")
    para = variant(adapter, tmp_path / "para", config=set_key("para", True))
    assert_error(invalid_dir(para, None), "inconsistent_adapter", "unexpected_tensor")
    bad = variant(adapter, tmp_path / "bad", config=set_key("para", "no"))
    assert_error(invalid_dir(bad, None), "invalid_adapter_config", "schema")


def test_deft_para_saves_p_only(llama: Path, tmp_path: Path) -> None:
    config = peft.DeftConfig(r=8, para=True, target_modules=TARGETS)
    adapter = build(llama, config, tmp_path / "a")
    assert validate_dir(adapter, llama).trainable_params == 2 * 8 * (32 + 16 + 32)


@pytest.mark.parametrize(("road_variant", "size"), [("road_1", 8), ("road_2", 16), ("road_4", 32)])
def test_road_variants(llama: Path, tmp_path: Path, road_variant: str, size: int) -> None:
    config = peft.RoadConfig(variant=road_variant, group_size=16, target_modules=TARGETS)
    adapter = build(llama, config, tmp_path / "a")
    report = validate_dir(adapter, llama)
    assert report.peft_type == "ROAD"
    # v_proj has 16 outputs: road_1 saves half, road_2 all, road_4 twice that.
    assert report.trainable_params == 2 * 2 * (2 * size + size + 2 * size)
    assert validate_dir(adapter, None).trainable_params == report.trainable_params
    wrong = variant(adapter, tmp_path / "wrong", tensors=reshape("v_proj.road_theta", (size + 2,)))
    assert_error(invalid_dir(wrong, llama), "incompatible_base", "shape_mismatch")
    pair = variant(adapter, tmp_path / "pair", tensors=reshape("v_proj.road_alpha", (size + 2,)))
    assert_error(invalid_dir(pair, None), "inconsistent_adapter", "shape_mismatch")
    no_alpha = variant(adapter, tmp_path / "no_alpha", tensors=drop("q_proj.road_alpha"))
    assert_error(invalid_dir(no_alpha, None), "inconsistent_adapter", "missing_tensor")
    unknown = variant(adapter, tmp_path / "unknown", config=set_key("variant", "road_3"))
    assert_error(invalid_dir(unknown, None), "inconsistent_adapter", "unexpected_tensor")
    bad = variant(adapter, tmp_path / "bad", config=set_key("group_size", 16.0))
    assert_error(invalid_dir(bad, None), "invalid_adapter_config", "schema")


@pytest.fixture(scope="module")
def vit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_vit(tmp_path_factory.mktemp("vit") / "vit")


@pytest.mark.parametrize(
    ("method", "params", "suffix", "wrong_shape"),
    [
        (peft.OFTConfig(oft_block_size=8, target_modules=[PATCH]), 6 * 28, "oft_R.weight", (4, 28)),
        (
            peft.BOFTConfig(boft_block_size=4, target_modules=[PATCH]),
            12 * 16 + 32,
            "boft_s",
            (32, 1),
        ),
        (peft.HRAConfig(r=4, target_modules=[PATCH]), 48 * 4, "hra_u", (32, 4)),
    ],
)
def test_conv2d_bases_rotate_in_channels_times_kernel(
    vit: Path,
    tmp_path: Path,
    method: peft.PeftConfig,
    params: int,
    suffix: str,
    wrong_shape: tuple[int, ...],
) -> None:
    # The patch embedding is a Conv2d 3 -> 32 with a 4x4 kernel: fan_in 48 (BOFT's scale is
    # [1, out] there, [out, 1] on a linear layer).
    adapter = save_conv_adapter(vit, method, tmp_path / "a")
    assert validate_dir(adapter, vit).trainable_params == params
    assert validate_dir(adapter, None).trainable_params == params
    wrong = variant(adapter, tmp_path / "wrong", tensors=reshape(suffix, wrong_shape))
    assert_error(invalid_dir(wrong, vit), "incompatible_base", "shape_mismatch")
