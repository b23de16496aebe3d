"""Request ids: a well-formed X-Request-ID is echoed; otherwise one is generated, unique per
request and per process (a forked worker draws a prefix of its own)."""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient

from registry.api import request_id


def test_generated_ids_are_unique_and_echoed(client: TestClient) -> None:
    ids = [client.get("/healthz").headers["X-Request-ID"] for _ in range(50)]
    assert len(set(ids)) == 50
    assert all(request_id._VALID.match(i.encode()) for i in ids)


@pytest.mark.parametrize("given", ["", "has space", "x" * 129, "semi;colon"])
def test_ill_formed_ids_are_replaced(client: TestClient, given: str) -> None:
    got = client.get("/healthz", headers={"X-Request-ID": given}).headers["X-Request-ID"]
    assert got != given
    assert request_id._VALID.match(got.encode())


def test_well_formed_id_is_kept_once(client: TestClient) -> None:
    r = client.get("/healthz", headers={"X-Request-ID": "ci-run-42.step:3"})
    assert r.headers.get_list("X-Request-ID") == ["ci-run-42.step:3"]


def test_a_forked_child_draws_its_own_prefix() -> None:
    parent = request_id.new_request_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report its first id and leave without running pytest's teardown
        os.write(write, request_id.new_request_id())
        os._exit(0)
    os.close(write)
    child = os.read(read, 200)
    os.close(read)
    os.waitpid(pid, 0)
    assert child
    assert child[:16] != parent[:16]
