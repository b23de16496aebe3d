"""``principals disable | enable | set-role | revoke`` as a script runs them (a real server
process, the CLI in a subprocess): JSON on stdout and the documented exit codes."""

from __future__ import annotations

from tests.cli.test_cli_e2e import cli
from tests.factories.catalog import unique
from tests.fixtures.server import LiveServer


def test_disable_enable_set_role_revoke(live_server: LiveServer) -> None:
    ns1, ns2, name = unique("team"), unique("team"), unique("bob")
    for ns in (ns1, ns2):
        assert cli(live_server, "namespaces", "create", ns)[0] == 0
    args = ("principals", "create", name, "--role", "viewer", "--namespace", ns1)
    assert cli(live_server, *args, "--namespace", ns2)[0] == 0
    code, issued, err = cli(live_server, "tokens", "create", "--principal", name)
    assert code == 0, err
    token = issued["token"]
    assert cli(live_server, "namespaces", "list", token=token)[0] == 0

    code, body, err = cli(live_server, "principals", "disable", name)
    assert code == 0, err
    assert body["disabled"] is True
    code, body, _ = cli(live_server, "namespaces", "list", token=token)
    assert (code, body["error"]) == (3, "unauthenticated")
    assert cli(live_server, "principals", "disable", name)[0] == 0  # idempotent
    code, body, _ = cli(live_server, "principals", "enable", name)
    assert (code, body["disabled"]) == (0, False)
    assert cli(live_server, "namespaces", "list", token=token)[0] == 0

    code, body, _ = cli(live_server, "principals", "set-role", name, "--role", "developer")
    assert (code, body["role"]) == (0, "developer")
    code, body, _ = cli(live_server, "principals", "revoke", name, "--namespace", ns1)
    assert (code, body["namespaces"]) == (0, [ns2])
    code, listing, _ = cli(live_server, "namespaces", "list", token=token)
    assert [n["name"] for n in listing["items"]] == [ns2]


def test_errors_exit_with_their_codes(live_server: LiveServer) -> None:
    nobody = unique("nobody")
    for args in (("disable", nobody), ("enable", nobody), ("set-role", nobody, "--role", "admin")):
        code, body, _ = cli(live_server, "principals", *args)
        assert (code, body["error"]) == (4, "principal_not_found"), args
    name = unique("eve")
    assert cli(live_server, "principals", "create", name, "--role", "developer")[0] == 0
    token = cli(live_server, "tokens", "create", "--principal", name)[1]["token"]
    code, body, _ = cli(live_server, "principals", "disable", unique("x"), token=token)
    assert (code, body["error"]) == (3, "policy_denied")
    code, body, _ = cli(live_server, "principals", "set-role", name, "--role", "wizard")
    assert (code, body["error"]) == (2, "usage")
    code, body, _ = cli(live_server, "principals", "revoke", name, "--namespace", unique("no"))
    assert (code, body["error"]) == (4, "namespace_not_found")
