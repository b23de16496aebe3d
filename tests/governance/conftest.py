"""A governed namespace: a developer who pushes, an approver, an operator, a base model."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from tests.factories.catalog import create_namespace, register_base, unique
from tests.factories.governance import Who, make_principal, push_version
from tests.fixtures.peft import PEFT_FIXTURES


@dataclass
class Team:
    client: TestClient
    namespace: str
    base: str
    adapter: str
    dev: Who
    approver: Who
    approver2: Who
    operator: Who
    tmp: Path
    pushed: int = 0

    def push(self, who: Who | None = None) -> str:
        self.pushed += 1
        return push_version(
            self.client,
            who or self.dev,
            self.namespace,
            self.adapter,
            self.base,
            self.pushed,
            self.tmp,
        )

    @property
    def adapter_ref(self) -> str:
        return f"{self.namespace}/{self.adapter}"


@pytest.fixture
def team(client: TestClient, tmp_path: Path) -> Team:
    ns = create_namespace(client)
    base = register_base(client, PEFT_FIXTURES / "bases" / "tiny-gpt2", name=unique("gpt2"))
    return Team(
        client=client,
        namespace=ns,
        base=base,
        adapter=unique("bot"),
        dev=make_principal(client, "developer", [ns]),
        approver=make_principal(client, "approver", [ns]),
        approver2=make_principal(client, "approver", [ns]),
        operator=make_principal(client, "operator", [ns]),
        tmp=tmp_path,
    )


@pytest.fixture
def fast_plans(client: TestClient) -> Iterator[None]:
    """The rollout tests' plans (``rollout_helpers.FAST_PLANS``) for one test, then the policy
    set's own again."""
    from tests.governance.rollout_helpers import FAST_PLANS, apply_plans  # imports this module

    before = client.get("/api/v1/policies").json()["rollout_text"]
    apply_plans(client, FAST_PLANS)
    yield
    apply_plans(client, before)


@pytest.fixture
def shipped_plans(client: TestClient) -> Iterator[None]:
    """The shipped ``registry/policies/rollout.yaml`` (plans and floor) for one test, then the
    policy set's own again."""
    from registry.policy.loader import default_rollout_text
    from tests.governance.rollout_helpers import apply_plans  # imports this module

    before = client.get("/api/v1/policies").json()["rollout_text"]
    apply_plans(client, default_rollout_text())
    yield
    apply_plans(client, before)


BACKGROUND = {"routing-epoch", "rollout-controller", "audit-checkpointer"}


@contextmanager
def counted(client: TestClient) -> Iterator[list[str]]:
    """The SQL statements the requests made inside the block run."""
    engine = client.app.state.sessions.engine  # type: ignore[attr-defined]
    seen: list[str] = []

    def on_execute(*args: object) -> None:
        statement = str(args[2])
        # Not part of what a request costs: the server's background threads (the routing-epoch
        # poller), and the caller's token and the policy-set version, re-read on their own
        # clocks (cache lifetimes of seconds).
        if threading.current_thread().name in BACKGROUND:
            return
        if not any(t in statement for t in ("api_tokens", "policy_sets")):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
