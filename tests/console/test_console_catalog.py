"""Issue 17: the console's catalog over real HTTP: search and filters, keyset pages, a version
page whose files, digests and downloads agree with the API, its evaluations and lineage graph."""

from __future__ import annotations

import hashlib
import re
import shutil
from typing import Any

from tests.console.helpers import error_code, signed_in, signed_in_app
from tests.factories.catalog import push, unique
from tests.factories.governance import make_principal, record_eval
from tests.fixtures.governance import Team
from tests.fixtures.peft import PEFT_FIXTURES
from tests.fixtures.server import LiveServer


def _adapters_on(page: str) -> list[str]:
    return re.findall(r'data-adapter="([^"]+)"', page)


def test_search_filters_and_keyset_pages(live_server: LiveServer, team: Team) -> None:
    tag = unique("t")
    for n in range(3):
        team.adapter = f"{unique('search')}-{n}"
        ref = team.push()
        team.client.post(
            f"/api/v1/adapters/{ref.replace('@', '/versions/')}/tags", json={"add": [tag]}
        )
    team.adapter = unique("other")
    team.push()
    browser = signed_in(live_server.url, team.dev.token)
    found = browser.get("/console/catalog", params={"ns": team.namespace, "q": "search"})
    assert len(_adapters_on(found.text)) == 3
    tagged = browser.get("/console/catalog", params={"ns": team.namespace, "tag": tag})
    assert _adapters_on(tagged.text) == _adapters_on(found.text)
    first = browser.get("/console/catalog", params={"ns": team.namespace, "limit": 2})
    listed = _adapters_on(first.text)
    assert len(listed) == 2
    nxt = re.search(r'id="next-page" href="([^"]+)"', first.text)
    assert nxt is not None
    rest = _adapters_on(browser.get("/console/catalog" + nxt.group(1).replace("&amp;", "&")).text)
    assert len(rest) == 2
    assert not set(listed) & set(rest)  # keyset: no overlap, nothing skipped
    api = team.client.get("/api/v1/adapters", params={"namespace": team.namespace}).json()
    assert [f"{a['namespace']}/{a['name']}" for a in api["items"]] == listed + rest
    unknown = browser.get("/console/catalog", params={"peft_type": "no-such-method"})
    assert (unknown.status_code, error_code(unknown)) == (400, "unknown_method")
    outsider = signed_in(live_server.url, make_principal(team.client, "developer").token)
    assert team.namespace not in outsider.get("/console/catalog").text


def _push(team: Team, name: str, **metadata: Any) -> str:
    target = team.tmp / f"{name}-{unique()}"
    shutil.copytree(PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn", target)
    (target / "README.md").write_text(f"{name}\n")
    r = push(team.client, team.namespace, team.adapter, target, team.base, **metadata)
    assert r.status_code == 201, r.text
    return f"{team.namespace}/{team.adapter}@v{r.json()['version']}"


def test_version_page_files_downloads_evaluations_and_lineage(team: Team) -> None:
    # In process, on the app (and artifact store) the team pushed to.
    v1 = _push(team, "first")
    v2 = _push(team, "child", parents=[{"ref": v1, "relation": "continued_from"}])
    record_eval(team.client, team.dev, v1, 0.81)
    browser = signed_in_app(team.client.app, team.dev.token)
    api = team.client.get(f"/api/v1/adapters/{v1.replace('@', '/versions/')}").json()
    page = browser.get(f"/console/catalog/{team.namespace}/{team.adapter}/v1")
    assert page.status_code == 200, page.text
    assert api["digest"] in page.text
    for f in api["files"]:
        assert f["digest"] in page.text
        body = browser.get(f"/console/catalog/{team.namespace}/{team.adapter}/v1/files/{f['name']}")
        assert body.status_code == 200, body.text
        assert hashlib.sha256(body.content).hexdigest() == f["digest"].removeprefix("sha256:")
    assert "0.81" in page.text  # the evaluation
    assert f'data-node="{v2}"' in page.text  # a descendant in the lineage graph
    child = browser.get(f"/console/catalog/{team.namespace}/{team.adapter}/v2").text
    assert f'data-node="{v1}"' in child
    assert "continued_from" in child
    missing = browser.get(f"/console/catalog/{team.namespace}/{team.adapter}/v1/files/nope.bin")
    assert missing.status_code == 404
    outsider = signed_in_app(team.client.app, make_principal(team.client, "developer").token)
    hidden = outsider.get(f"/console/catalog/{team.namespace}/{team.adapter}/v1")
    assert hidden.status_code == 404  # not even its existence
