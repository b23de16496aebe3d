"""The jobs API's refusals and reads: every malformed request is a 4xx with a stable code and
queues nothing; callers who may not read an input or register into the target are refused;
a job is visible to its creator and admins only; listings page newest first; a create is
idempotent under an ``Idempotency-Key``; without torch the server answers 501."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.factories.catalog import all_pages as pages_of
from tests.factories.catalog import create_namespace, error_of, push, register_base, unique
from tests.factories.governance import Who, make_principal
from tests.factories.jobs import lora_dir
from tests.fixtures.peft import PEFT_FIXTURES
from tests.jobs.conftest import World


def my_jobs(world: World, who: Who) -> list[dict[str, Any]]:
    r = world.client.get("/api/v1/jobs", headers=who.headers, params={"limit": 500})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def refused(world: World, body: dict[str, Any], who: Who | None = None) -> tuple[int, str, Any]:
    """Submit ``body``; assert nothing was queued; the status, code and context reason."""
    who = who or world.dev
    before = my_jobs(world, who)
    r = world.submit(body, who)
    assert my_jobs(world, who) == before
    code, reason = error_of(r)
    return r.status_code, code, reason


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


MALFORMED: list[tuple[str, Any, int, str]] = [
    ("unknown kind", lambda b: b | {"kind": "distil"}, 422, "invalid_request"),
    ("no kind", lambda b: _without(b, "kind"), 422, "invalid_request"),
    ("no inputs", lambda b: b | {"inputs": []}, 422, "invalid_request"),
    ("too many inputs", lambda b: b | {"inputs": b["inputs"] * 33}, 422, "invalid_request"),
    ("unknown field", lambda b: b | {"robust": "median"}, 422, "invalid_request"),
    (
        "weight too large",
        lambda b: b | {"inputs": [{"ref": "a/b", "weight": 1e7}]},
        422,
        "invalid_request",
    ),
    ("rank zero", lambda b: b | {"rank": 0}, 422, "invalid_request"),
    ("density above 1", lambda b: b | {"density": 1.5}, 422, "invalid_request"),
    ("negative seed", lambda b: b | {"seed": -1}, 422, "invalid_request"),
    ("method pattern", lambda b: b | {"method": "Cat!"}, 422, "invalid_request"),
    ("sign method", lambda b: b | {"majority_sign_method": "most"}, 422, "invalid_request"),
    ("target without name", lambda b: b | {"target": "onlyns"}, 400, "invalid_name"),
    ("target upper case", lambda b: b | {"target": "NS/Name"}, 400, "invalid_name"),
    (
        "input ref malformed",
        lambda b: b | {"inputs": [{"ref": "no-slash@v1"}]},
        400,
        "invalid_reference",
    ),
    ("unknown method", lambda b: b | {"method": "average"}, 422, "incompatible_adapters"),
    (
        "merge of two",
        lambda b: {"kind": "merge", "inputs": b["inputs"], "register_as": "m"},
        422,
        "invalid_request",
    ),
    (
        "merge without name",
        lambda b: {"kind": "merge", "inputs": b["inputs"][:1]},
        422,
        "invalid_request",
    ),
    (
        "aggregate weight zero",
        lambda b: {
            "kind": "aggregate",
            "target": b["target"],
            "inputs": [{"ref": "a/b", "weight": 0}],
        },
        422,
        "invalid_request",
    ),
]


@pytest.mark.parametrize(
    ("change", "status", "code"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_every_malformed_request_is_refused_with_its_code(
    world: World, change: Any, status: int, code: str
) -> None:
    assert refused(world, change(world.compose()))[:2] == (status, code)


def test_a_weight_that_is_not_a_finite_number_is_refused(world: World) -> None:
    text = json.dumps(world.compose()).replace('"weight": 0.7', '"weight": Infinity')
    r = world.client.post(
        "/api/v1/jobs",
        content=text,
        headers=world.dev.headers | {"Content-Type": "application/json"},
    )
    assert (r.status_code, error_of(r)[0]) == (422, "invalid_request")
    assert my_jobs(world, world.dev) == []


def test_inputs_and_targets_that_are_not_there_are_404(world: World) -> None:
    missing_version = world.inputs[0].replace("@v1", "@v9")
    body = world.compose() | {"inputs": [{"ref": missing_version}]}
    assert refused(world, body)[:2] == (404, "version_not_found")
    assert refused(world, world.compose(target=f"{unique('nons')}/x"))[:2] == (
        404,
        "namespace_not_found",
    )


def test_a_caller_who_may_not_read_an_input_or_register_into_the_target_is_refused(
    world: World,
) -> None:
    """A readable target one may not register into: 403 ``policy_denied``. An input or a target
    in a namespace one may not read: 404, as for any read (its existence is not revealed)."""
    viewer = make_principal(world.client, "viewer", [world.namespace])
    assert refused(world, world.compose(), viewer)[:2] == (403, "policy_denied")
    other_ns = create_namespace(world.client)
    outsider = make_principal(world.client, "developer", [other_ns])
    assert refused(world, world.compose(target=f"{other_ns}/x"), outsider)[:2] == (
        404,
        "namespace_not_found",
    )
    assert refused(world, world.compose(target=f"{other_ns}/x"))[:2] == (
        404,
        "namespace_not_found",
    )


def test_inputs_the_catalog_knows_cannot_be_combined_are_refused(
    world: World, tmp_path: Path
) -> None:
    ia3 = unique("ia3")
    gpt2_ia3 = PEFT_FIXTURES / "adapters" / "gpt2-ia3"
    assert push(world.client, world.namespace, ia3, gpt2_ia3, world.base).status_code == 201
    body = world.compose() | {
        "inputs": [{"ref": world.inputs[0]}, {"ref": f"{world.namespace}/{ia3}"}]
    }
    assert refused(world, body) == (422, "incompatible_adapters", "not_lora")
    other_base = register_base(
        world.client, PEFT_FIXTURES / "bases" / "tiny-gpt2", name=unique("gpt2")
    )
    elsewhere = unique("elsewhere")
    directory = lora_dir(tmp_path / "elsewhere", rank=2, seed=9)
    assert push(world.client, world.namespace, elsewhere, directory, other_base).status_code == 201
    body = world.compose() | {
        "inputs": [{"ref": world.inputs[0]}, {"ref": f"{world.namespace}/{elsewhere}"}]
    }
    assert refused(world, body) == (422, "incompatible_adapters", "different_bases")


def test_a_merge_into_a_base_without_stored_weights_is_refused(world: World) -> None:
    body = {"kind": "merge", "inputs": [{"ref": world.inputs[0]}], "register_as": unique("m")}
    # The developer may not register base models at all (operators and admins may).
    assert refused(world, body)[:2] == (403, "policy_denied")
    status, code, reason = refused(world, body, world.admin)
    assert (status, code, reason) == (400, "bad_request", "base_weights_not_stored")


def test_without_torch_a_job_is_refused_with_501(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fake by necessity: the test environment has torch. ``sys.modules["torch"] = None`` makes
    # ``import torch`` fail exactly as on an installation without the maths extra.
    monkeypatch.setitem(sys.modules, "torch", None)
    status, code, _ = refused(world, world.compose())
    assert (status, code) == (501, "maths_unavailable")


def test_a_job_is_seen_by_its_creator_and_admins_only(world: World) -> None:
    job = world.submit(world.compose()).json()
    stranger = make_principal(world.client, "developer", [world.namespace])
    r = world.client.get(f"/api/v1/jobs/{job['id']}", headers=stranger.headers)
    assert (r.status_code, error_of(r)[0]) == (404, "job_not_found")
    r = world.client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=stranger.headers)
    assert (r.status_code, error_of(r)[0]) == (404, "job_not_found")
    assert job["id"] not in {j["id"] for j in my_jobs(world, stranger)}
    assert world.client.get(f"/api/v1/jobs/{job['id']}").json()["created_by"] == world.dev.name
    r = world.client.get(f"/api/v1/jobs/{uuid.uuid4()}", headers=world.dev.headers)
    assert (r.status_code, error_of(r)[0]) == (404, "job_not_found")


def test_listings_page_newest_first_and_hold_only_the_callers_jobs(world: World) -> None:
    made = [world.submit(world.compose()).json()["id"] for _ in range(5)]
    pages = pages_of(world.client, "/api/v1/jobs", limit=2, headers=world.dev.headers)
    listed = [j["id"] for page in pages for j in page]
    assert listed == list(reversed(made))
    assert [len(p) for p in pages] == [2, 2, 1]
    everyone = {j["id"] for page in pages_of(world.client, "/api/v1/jobs", limit=500) for j in page}
    assert set(made) <= everyone  # the admin's listing holds the developer's jobs
    r = world.client.get("/api/v1/jobs", params={"page_token": "nonsense"})
    assert (r.status_code, error_of(r)[0]) == (400, "invalid_page_token")


def test_a_create_with_an_idempotency_key_queues_one_job(world: World) -> None:
    key = {"Idempotency-Key": unique("job")}
    body = world.compose()
    first = world.client.post("/api/v1/jobs", json=body, headers=world.dev.headers | key)
    again = world.client.post("/api/v1/jobs", json=body, headers=world.dev.headers | key)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Location"] == first.headers["Location"]
    assert [j["id"] for j in my_jobs(world, world.dev)] == [first.json()["id"]]
    other = world.client.post("/api/v1/jobs", json=world.compose(), headers=world.dev.headers | key)
    assert (other.status_code, error_of(other)[0]) == (422, "idempotency_key_reused")
