"""Revision a7c2e4f6b8d1: lineage edges with a base model version as child (merged checkpoints).

Up: existing edges stay, a base child is accepted, ``one_child`` refuses an edge with both or
neither child. Down: the base-child edges are deleted, the others stay."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, text

from registry.db import migrate
from tests.fixtures.db import drop_database, new_database_url
from tests.migrations.test_migrations import CREATED_AT, engine_for, new_id, seed

REVISION = "a7c2e4f6b8d1"
BEFORE = "f1a3c5e7d9b2"
_INSERT = (
    "INSERT INTO lineage_edges (id, child_version_id, {extra_col} relation, parent_version_id,"
    " parent_base_version_id, created_at) VALUES (:id, :child, {extra_val} :relation, :parent,"
    " :parent_base, :created_at)"
)


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    url = new_database_url(tmp_path, "registry_lineage_migration")
    try:
        yield url
    finally:
        drop_database(url)


def _edge(
    engine: Engine,
    *,
    child: str | None,
    relation: str,
    parent: str | None = None,
    parent_base: str | None = None,
    child_base: str | None = None,
    with_base_column: bool = True,
) -> str:
    edge_id = new_id()
    sql = _INSERT.format(
        extra_col="child_base_version_id," if with_base_column else "",
        extra_val=":child_base," if with_base_column else "",
    )
    params = {
        "id": edge_id,
        "child": child,
        "child_base": child_base,
        "relation": relation,
        "parent": parent,
        "parent_base": parent_base,
        "created_at": CREATED_AT,
    }
    with engine.begin() as conn:
        conn.execute(text(sql), params)
    return edge_id


def _edge_ids(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return {
            str(r[0]).replace("-", "") for r in conn.execute(text("SELECT id FROM lineage_edges"))
        }


def test_base_children_up_and_down(db_url: str) -> None:
    migrate.upgrade(db_url, BEFORE)
    with engine_for(db_url) as engine:
        keys = seed(engine)
        adapter, base = keys["adapter_versions"], keys["base_model_versions"]
        old = _edge(
            engine, child=adapter, relation="trained_on", parent_base=base, with_base_column=False
        )
    migrate.upgrade(db_url, REVISION)
    with engine_for(db_url) as engine:
        assert _edge_ids(engine) == {old}
        merged = _edge(engine, child=None, child_base=base, relation="merged_from", parent=adapter)
        for child, child_base in ((adapter, base), (None, None)):
            with pytest.raises(sa.exc.IntegrityError):
                _edge(engine, child=child, child_base=child_base, relation="x", parent=adapter)
        assert _edge_ids(engine) == {old, merged}
    migrate.downgrade(db_url, BEFORE)
    with engine_for(db_url) as engine:
        assert _edge_ids(engine) == {old}
        with pytest.raises(sa.exc.IntegrityError):  # NOT NULL again
            _edge(engine, child=None, relation="x", parent=adapter, with_base_column=False)
    migrate.upgrade(db_url, "head")
    with engine_for(db_url) as engine:
        assert _edge_ids(engine) == {old}
