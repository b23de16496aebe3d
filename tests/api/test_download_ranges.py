"""``Range`` on file downloads (adapter versions and base revisions): one byte range answered
206 with its ``Content-Range``, bad ranges 416 with ``Content-Range: bytes */SIZE``, ranges it
does not serve ignored (the whole file, 200)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.factories.catalog import create_namespace, push, register_base, unique
from tests.fixtures.peft import PEFT_FIXTURES

SRC = PEFT_FIXTURES / "adapters" / "llama-lora-r16-all-linear"
FILE = "adapter_model.safetensors"


@pytest.fixture
def url(client: TestClient) -> str:
    ns, name = create_namespace(client), unique("bot")
    base = register_base(client, PEFT_FIXTURES / "bases" / "tiny-llama")
    r = push(client, ns, name, SRC, base)
    assert r.status_code == 201, r.text
    return f"/api/v1/adapters/{ns}/{name}/versions/v1/files/{FILE}"


DATA = (SRC / FILE).read_bytes()
SIZE = len(DATA)


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [
        ("bytes=0-9", 0, 10),
        ("bytes=100-", 100, SIZE),
        ("bytes=-7", SIZE - 7, SIZE),
        (f"bytes=-{SIZE * 2}", 0, SIZE),  # a suffix longer than the file: all of it
        (f"bytes=5-{SIZE * 3}", 5, SIZE),  # an end past the file is clamped
        (f"bytes={SIZE - 1}-{SIZE - 1}", SIZE - 1, SIZE),
        (" BYTES = 3 - 4 ", 3, 5),
    ],
)
def test_one_range_is_206(client: TestClient, url: str, header: str, start: int, stop: int) -> None:
    r = client.get(url, headers={"Range": header})
    assert r.status_code == 206, r.text
    assert r.content == DATA[start:stop]
    assert r.headers["Content-Range"] == f"bytes {start}-{stop - 1}/{SIZE}"
    assert r.headers["Content-Length"] == str(stop - start)
    assert r.headers["X-Content-Digest"].startswith("sha256:")  # the whole file's


@pytest.mark.parametrize(
    "header",
    [
        f"bytes={SIZE}-",
        f"bytes={SIZE + 10}-{SIZE + 20}",
        "bytes=9-3",
        "bytes=-0",
        "bytes=abc",
        "bytes=-",
        "bytes=",
        "bytes=1-2-3",
        "bytes=99999999999999999999-",
    ],
)
def test_bad_range_is_416(client: TestClient, url: str, header: str) -> None:
    r = client.get(url, headers={"Range": header})
    assert r.status_code == 416, r.text
    assert r.json()["error"] == "range_not_satisfiable"
    assert r.headers["Content-Range"] == f"bytes */{SIZE}"
    assert r.json()["context"]["size"] == SIZE


@pytest.mark.parametrize("header", ["items=0-9", "bytes=0-1,5-6"])
def test_ranges_not_served_are_ignored(client: TestClient, url: str, header: str) -> None:
    r = client.get(url, headers={"Range": header})
    assert r.status_code == 200
    assert r.content == DATA
    assert r.headers["Accept-Ranges"] == "bytes"


def test_if_range_with_another_etag_gets_the_whole_file(client: TestClient, url: str) -> None:
    etag = client.get(url).headers["ETag"]
    same = client.get(url, headers={"Range": "bytes=0-0", "If-Range": etag})
    assert (same.status_code, same.content) == (206, DATA[:1])
    other = client.get(url, headers={"Range": "bytes=0-0", "If-Range": '"other"'})
    assert (other.status_code, other.content) == (200, DATA)


def test_a_range_needs_read_access_first(client: TestClient, url: str) -> None:
    """Authorization comes before the range: an outsider learns nothing from a 416."""
    from tests.factories.governance import make_principal

    outsider = make_principal(client, "viewer", [create_namespace(client)])
    r = client.get(url, headers={"Range": f"bytes={SIZE * 2}-", **outsider.headers})
    assert r.status_code == 404


def test_base_revision_files_serve_ranges(client: TestClient, tmp_path: Path) -> None:
    from registry.client import RegistryClient

    base_dir = PEFT_FIXTURES / "bases" / "tiny-llama"
    name = unique("base")
    api = RegistryClient(
        "http://testserver", None, 30.0, transport=client._transport, sleep=lambda _s: None
    )
    api._http.headers["Authorization"] = client.headers["Authorization"]
    api.push_base(name, "main", base_dir, upload_weights=True)
    weights = next(p for p in sorted(base_dir.iterdir()) if p.suffix == ".safetensors")
    url = f"/api/v1/base-models/{name}/revisions/main/files/{weights.name}"
    r = client.get(url, headers={"Range": "bytes=2-5"})
    assert (r.status_code, r.content) == (206, weights.read_bytes()[2:6])
    assert client.get(url, headers={"Range": "bytes=-0"}).status_code == 416
