"""A QLoRA base through the real CLI and server: the plain base is registered, the checkpoint
quantized from it (by the real bitsandbytes, or packed as GPTQ) is registered with
--quantized-from (lineage quantized_from, its manifest holding logical shapes), and a LoRA
trained on the plain base pushes against it."""

from __future__ import annotations

from pathlib import Path

import peft
import pytest

from tests.cli.test_cli_e2e import cli
from tests.factories.catalog import unique
from tests.fixtures.server import LiveServer
from tests.maths.tiny import save_adapter, tiny_llama
from tests.validation.quantized.make_gptq_awq import gptq_checkpoint
from tests.validation.quantized.test_bnb_bases import MODES, quantize

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")


@pytest.mark.parametrize("method", ["bitsandbytes", "gptq"])
def test_register_quantized_from_and_push_a_qlora(
    method: str, live_server: LiveServer, tmp_path: Path
) -> None:
    plain = tiny_llama(tmp_path / "plain", hidden_size=64, intermediate_size=128)
    if method == "gptq":
        quantized = gptq_checkpoint(plain, tmp_path / "gptq")
    else:
        quantized = quantize(plain, tmp_path / "nf4", **MODES["nf4"])
    name, ns = unique("llama"), unique("qlora")
    register = ("base-models", "register", name)
    code, _, err = cli(live_server, *register, "--revision", "plain", "--from", str(plain))
    assert code == 0, err
    code, _, err = cli(
        live_server,
        *register,
        "--revision",
        "q",
        "--from",
        str(quantized),
        "--quantized-from",
        f"{name}@plain",
    )
    assert code == 0, err
    code, lineage, err = cli(live_server, "base-models", "lineage", f"{name}@q")
    assert code == 0, err
    assert [(e["relation"], e["parent"]) for e in lineage["edges"]] == [
        ("quantized_from", f"{name}@plain")
    ]
    code, shown, err = cli(live_server, "base-models", "show", f"{name}@q")
    assert code == 0, err
    assert shown["config"]["quantization_config"]["quant_method"] == method
    adapter = save_adapter(plain, peft.LoraConfig(r=4, target_modules=["q_proj"]), tmp_path / "a")
    assert cli(live_server, "namespaces", "create", ns)[0] == 0
    code, pushed, err = cli(
        live_server,
        "adapters",
        "push",
        str(adapter),
        "--adapter",
        f"{ns}/bot",
        "--base",
        f"{name}@q",
    )
    assert code == 0, err
    assert pushed["state"] == "validated"
    code, refused, err = cli(
        live_server,
        *register,
        "--revision",
        "x",
        "--from",
        str(quantized),
        "--quantized-from",
        "no-revision",
    )
    assert code == 2, err  # usage: --quantized-from needs NAME@REV
    assert refused["error"] == "usage"
    assert "--quantized-from" in refused["detail"]


def test_push_trained_on_the_quantized_base(live_server: LiveServer, tmp_path: Path) -> None:
    """--trained-on: a LoRA validated against the plain base records that it was trained on the
    nf4 checkpoint quantized from it; any other base revision is refused with a reason."""
    plain = tiny_llama(tmp_path / "plain", hidden_size=64, intermediate_size=128)
    nf4 = quantize(plain, tmp_path / "nf4", **MODES["nf4"])
    name, ns = unique("llama"), unique("qlora")
    register = ("base-models", "register", name)
    assert cli(live_server, *register, "--revision", "plain", "--from", str(plain))[0] == 0
    assert cli(live_server, *register, "--revision", "other", "--from", str(plain))[0] == 0
    code, _, err = cli(
        live_server, *register, "--revision", "nf4", "--from", str(nf4), "--quantized-from",
        f"{name}@plain",
    )  # fmt: skip
    assert code == 0, err
    adapter = save_adapter(plain, peft.LoraConfig(r=4, target_modules=["q_proj"]), tmp_path / "a")
    assert cli(live_server, "namespaces", "create", ns)[0] == 0
    push = ("adapters", "push", str(adapter), "--adapter", f"{ns}/bot")
    for base, trained_on, reason in [
        (f"{name}@other", f"{name}@nf4", "trained_on_not_quantized_from_base"),
        (f"{name}@plain", f"{name}@plain", "trained_on_is_base"),
    ]:
        code, refused, err = cli(live_server, *push, "--base", base, "--trained-on", trained_on)
        assert code != 0, refused
        assert refused["error"] == "bad_request", refused
        assert refused["context"]["reason"] == reason
    code, _, err = cli(live_server, *push, "--base", f"{name}@plain", "--trained-on", "nope")
    assert code == 2, err
    code, pushed, err = cli(
        live_server, *push, "--base", f"{name}@plain", "--trained-on", f"{name}@nf4"
    )
    assert code == 0, err
    assert (pushed["base"], pushed["trained_on"]) == (f"{name}@plain", f"{name}@nf4")
    code, shown, err = cli(live_server, "adapters", "show", f"{ns}/bot@v1")
    assert code == 0, err
    assert (shown["base"], shown["trained_on"]) == (f"{name}@plain", f"{name}@nf4")
    code, lineage, err = cli(live_server, "adapters", "lineage", f"{ns}/bot@v1")
    assert code == 0, err
    assert sorted((e["relation"], e["parent"]) for e in lineage["edges"] if e["depth"] == 1) == [
        ("trained_on", f"{name}@nf4"),
        ("trained_on", f"{name}@plain"),
    ]
