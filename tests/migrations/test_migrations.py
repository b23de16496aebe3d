"""Migration tests (STYLE §3.7): one head, documented revisions, no drift, round trips with
data, offline SQL for PostgreSQL, and the start-up schema check.

Every test runs on the dialect selected by ``REGISTRY_TEST_DIALECT`` against its own fresh,
empty database, dropped afterwards. Seed rows go in with raw SQL so that they do not depend on the
live ORM classes (which always describe head).
"""

from __future__ import annotations

import ast
import io
import itertools
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect, text

from registry.all_models import metadata
from registry.app import create_app
from registry.db import migrate
from registry.db.engine import make_engine
from registry.settings import DatabaseSettings
from tests.fixtures.app import make_settings
from tests.fixtures.db import drop_database, new_database_url

VERSIONS_DIR = migrate.MIGRATIONS / "versions"
DOCSTRING_SECTIONS = ("Why:", "Locking:", "Downgrade:")
# alembic.ini's file_template: YYYY-MM-DD-HHMM_<rev>_<slug>.py
FILE_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}-\d{4}_[0-9a-f]+_[a-z0-9_]+\.py$")
# Tables the seed fills, parents first; each holds exactly one seeded row per seed.
SEEDED_TABLES = (
    "principals",
    "namespaces",
    "base_models",
    "blobs",
    "base_model_versions",
    "adapters",
    "adapter_versions",
    "version_files",
)
CREATED_AT = "2026-01-02 03:04:05+00:00"


# --- helpers ---------------------------------------------------------------------------------


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(migrate.alembic_config())


def revisions_base_to_head() -> list[Script]:
    """Every revision, oldest first (the tree is linear: see TestRevisionTree)."""
    return list(reversed(list(script_directory().walk_revisions())))


def revision_ids() -> list[str]:
    return [script.revision for script in revisions_base_to_head()]


@contextmanager
def engine_for(url: str) -> Iterator[Engine]:
    engine = make_engine(DatabaseSettings(url=url))
    try:
        yield engine
    finally:
        engine.dispose()


def user_tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def schema_drift(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def current(url: str) -> set[str]:
    with engine_for(url) as engine:
        return migrate.current_revisions(engine)


def new_id() -> str:
    # sa.Uuid stores 32 hex digits on SQLite; PostgreSQL's uuid input accepts the same form.
    return uuid.uuid4().hex


def seed(engine: Engine) -> dict[str, str]:
    """Insert one row into each of SEEDED_TABLES with raw SQL; return the keys by table."""
    keys = {
        "principals": new_id(),
        "namespaces": new_id(),
        "base_models": new_id(),
        "blobs": uuid.uuid4().hex + uuid.uuid4().hex,  # a 64-hex sha256 digest
        "base_model_versions": new_id(),
        "adapters": new_id(),
        "adapter_versions": new_id(),
        "version_files": new_id(),
    }
    suffix = keys["principals"][:8]
    statements: list[tuple[str, dict[str, Any]]] = [
        (
            "INSERT INTO principals (id, name, kind, role, created_at)"
            " VALUES (:id, :name, 'human', 'admin', :created_at)",
            {"id": keys["principals"], "name": f"seed-{suffix}"},
        ),
        (
            "INSERT INTO namespaces (id, name, description, created_at)"
            " VALUES (:id, :name, '', :created_at)",
            {"id": keys["namespaces"], "name": f"ns-{suffix}"},
        ),
        (
            "INSERT INTO base_models (id, name, created_at) VALUES (:id, :name, :created_at)",
            {"id": keys["base_models"], "name": f"org/base-{suffix}"},
        ),
        (
            "INSERT INTO blobs (digest, size, created_at) VALUES (:digest, 123, :created_at)",
            {"digest": keys["blobs"]},
        ),
        (
            "INSERT INTO base_model_versions (id, base_model_id, revision, config,"
            " manifest_digest, manifest_blob, tensor_count, parameter_count, registered_by_id,"
            " created_at) VALUES (:id, :base_model_id, 'main', '{}', :manifest_digest,"
            " :blob, 2, 1000, :principal_id, :created_at)",
            {
                "id": keys["base_model_versions"],
                "base_model_id": keys["base_models"],
                "manifest_digest": f"sha256:{keys['blobs']}",
                "blob": keys["blobs"],
                "principal_id": keys["principals"],
            },
        ),
        (
            "INSERT INTO adapters (id, namespace_id, name, description, latest_version,"
            " created_at) VALUES (:id, :namespace_id, :name, '', 1, :created_at)",
            {"id": keys["adapters"], "namespace_id": keys["namespaces"], "name": "adapter"},
        ),
        (
            "INSERT INTO adapter_versions (id, adapter_id, version, digest, state,"
            " base_model_version_id, peft_type, target_modules, rank_pattern, use_dora,"
            " use_rslora, modules_to_save, trainable_params, config, validation_report,"
            " description, registered_by_id, created_at) VALUES (:id, :adapter_id, 1, :digest,"
            " 'registered', :base_model_version_id, 'LORA', '[\"q_proj\"]', '{}', :no, :no,"
            " '[]', 4096, '{}', '{}', '', :principal_id, :created_at)",
            {
                "id": keys["adapter_versions"],
                "adapter_id": keys["adapters"],
                "digest": f"sha256:{keys['blobs']}",
                "base_model_version_id": keys["base_model_versions"],
                "no": False,
                "principal_id": keys["principals"],
            },
        ),
        (
            "INSERT INTO version_files (id, adapter_version_id, name, digest, size)"
            " VALUES (:id, :adapter_version_id, 'adapter_model.safetensors', :digest, 123)",
            {
                "id": keys["version_files"],
                "adapter_version_id": keys["adapter_versions"],
                "digest": keys["blobs"],
            },
        ),
    ]
    with engine.begin() as conn:
        for sql, params in statements:
            conn.execute(text(sql), {**params, "created_at": CREATED_AT})
    return keys


def seeded_keys_present(engine: Engine, keys: dict[str, str]) -> dict[str, bool]:
    present: dict[str, bool] = {}
    with engine.connect() as conn:
        for table, key in keys.items():
            column = "digest" if table == "blobs" else "id"
            found = conn.execute(
                text(f"SELECT COUNT(*) FROM {table} WHERE {column} = :key"), {"key": key}
            ).scalar_one()
            present[table] = found == 1
    return present


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table: conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
            for table in SEEDED_TABLES
        }


def is_stub(function: ast.FunctionDef) -> bool:
    """True when a function body is only a docstring, ``pass`` or ``...``."""
    for statement in function.body:
        if isinstance(statement, ast.Pass):
            continue
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            continue  # docstring or ``...``
        return False
    return True


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of the selected dialect (no migrations applied)."""
    url = new_database_url(tmp_path, "registry_migrations")
    try:
        yield url
    finally:
        drop_database(url)


# --- tests -----------------------------------------------------------------------------------


class TestRevisionTree:
    def test_single_head_revision_exists(self) -> None:
        heads = script_directory().get_heads()

        assert len(heads) == 1, f"merge the heads: {heads}"
        assert migrate.head_revisions() == set(heads)

    def test_history_is_linear_from_base_to_head(self) -> None:
        scripts = revisions_base_to_head()

        assert scripts[0].down_revision is None
        for previous, script in itertools.pairwise(scripts):
            assert script.down_revision == previous.revision, script.path
        assert scripts[-1].revision in migrate.head_revisions()

    def test_revision_files_follow_file_template(self) -> None:
        names = sorted(path.name for path in VERSIONS_DIR.glob("*.py"))

        assert names, "no revision files found"
        assert [name for name in names if not FILE_NAME.match(name)] == []
        assert len(names) == len(revisions_base_to_head())

    @pytest.mark.parametrize("section", DOCSTRING_SECTIONS)
    def test_docstring_has_section_in_every_revision(self, section: str) -> None:
        missing = [
            Path(script.path).name
            for script in revisions_base_to_head()
            if section not in (ast.get_docstring(ast.parse(Path(script.path).read_text())) or "")
        ]

        assert missing == [], f"revisions without a {section!r} docstring section"

    def test_downgrade_implemented_in_every_revision(self) -> None:
        stubs = []
        for script in revisions_base_to_head():
            tree = ast.parse(Path(script.path).read_text())
            functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
            downgrade = functions.get("downgrade")
            # Either real work, or an explicit ``raise`` with a reason (STYLE §3.7).
            if downgrade is None or is_stub(downgrade):
                stubs.append(Path(script.path).name)

        assert stubs == [], "revisions whose downgrade() is missing or empty"


class TestSchemaDrift:
    def test_metadata_matches_schema_at_head(self, db_url: str) -> None:
        migrate.upgrade(db_url, "head")

        with engine_for(db_url) as engine:
            assert schema_drift(engine) == []


class TestRoundTrip:
    def test_each_revision_applies_one_at_a_time(self, db_url: str) -> None:
        for revision in revision_ids():
            migrate.upgrade(db_url, revision)
            assert current(db_url) == {revision}

        assert current(db_url) == migrate.head_revisions()

    def test_full_downgrade_and_upgrade_works_with_data_in_db(self, db_url: str) -> None:
        revisions = revision_ids()
        for revision in revisions:
            migrate.upgrade(db_url, revision)
        with engine_for(db_url) as engine:
            seed(engine)
            assert row_counts(engine) == dict.fromkeys(SEEDED_TABLES, 1)

        # Down one step at a time, with the seed rows in place.
        for revision in reversed(revisions[:-1]):
            migrate.downgrade(db_url, revision)
            assert current(db_url) == {revision}
        migrate.downgrade(db_url, "base")
        assert current(db_url) == set()
        with engine_for(db_url) as engine:
            assert user_tables(engine) == set()

        # And up again: an empty, usable schema with no drift.
        for revision in revisions:
            migrate.upgrade(db_url, revision)
            assert current(db_url) == {revision}
        with engine_for(db_url) as engine:
            assert row_counts(engine) == dict.fromkeys(SEEDED_TABLES, 0)
            assert schema_drift(engine) == []
            keys = seed(engine)
            assert all(seeded_keys_present(engine, keys).values())

    def test_step_down_and_up_keeps_rows_for_every_revision_pair(self, db_url: str) -> None:
        # For each pair (older, newer) of consecutive revisions: with data at head, downgrade
        # to ``older`` (through ``newer``'s downgrade) and upgrade back to head; the rows stay.
        # The initial revision's downgrade drops everything: the full round trip covers it.
        # With a single revision there is no pair and nothing to check here.
        revisions = revision_ids()
        migrate.upgrade(db_url, "head")
        with engine_for(db_url) as engine:
            keys = seed(engine)

        for older in reversed(revisions[:-1]):
            migrate.downgrade(db_url, older)
            assert current(db_url) == {older}
            migrate.upgrade(db_url, "head")
            with engine_for(db_url) as engine:
                present = seeded_keys_present(engine, keys)
            assert present == dict.fromkeys(SEEDED_TABLES, True), f"rows lost below {older}"

        assert current(db_url) == migrate.head_revisions()
        with engine_for(db_url) as engine:
            assert row_counts(engine) == dict.fromkeys(SEEDED_TABLES, 1)


class TestOfflineSql:
    @staticmethod
    def render(revision: str, *, downgrade: bool = False) -> str:
        buffer = io.StringIO()
        cfg = migrate.alembic_config("postgresql+psycopg://x@localhost/x")
        cfg.output_buffer = buffer
        if downgrade:
            command.downgrade(cfg, revision, sql=True)
        else:
            command.upgrade(cfg, revision, sql=True)
        return buffer.getvalue()

    def test_upgrade_sql_renders_for_postgresql(self) -> None:
        sql = self.render("head")

        assert "CREATE TABLE adapter_versions" in sql
        assert "JSONB" in sql
        assert "INSERT INTO alembic_version" in sql

    def test_downgrade_sql_renders_for_postgresql(self) -> None:
        sql = self.render("head:base", downgrade=True)

        assert "DROP TABLE adapter_versions" in sql


class TestStartupSchemaCheck:
    def test_app_refuses_to_start_when_schema_is_not_migrated(
        self, db_url: str, tmp_path: Path
    ) -> None:
        settings = make_settings(db_url, tmp_path / "artifacts")
        assert settings.database.auto_migrate is False

        with pytest.raises(migrate.SchemaOutOfDate) as excinfo, TestClient(create_app(settings)):
            pass

        assert excinfo.value.code == "schema_out_of_date"
        with engine_for(db_url) as engine:
            assert user_tables(engine) == set()  # it did not migrate on its own

    def test_app_migrates_and_starts_when_auto_migrate_is_set(
        self, db_url: str, tmp_path: Path
    ) -> None:
        settings = make_settings(db_url, tmp_path / "artifacts")
        settings.database = settings.database.model_copy(update={"auto_migrate": True})

        with TestClient(create_app(settings)) as client:
            response = client.get("/healthz")

        assert response.status_code == 200
        assert current(db_url) == migrate.head_revisions()


class TestCheckSchema:
    def test_check_schema_passes_at_head(self, db_url: str) -> None:
        migrate.upgrade(db_url, "head")

        with engine_for(db_url) as engine:
            migrate.check_schema(engine)

    def test_check_schema_raises_on_empty_database(self, db_url: str) -> None:
        with engine_for(db_url) as engine, pytest.raises(migrate.SchemaOutOfDate) as excinfo:
            migrate.check_schema(engine)

        assert excinfo.value.code == "schema_out_of_date"

    def test_check_schema_raises_at_base(self, db_url: str) -> None:
        migrate.upgrade(db_url, "head")
        migrate.downgrade(db_url, "base")

        with engine_for(db_url) as engine, pytest.raises(migrate.SchemaOutOfDate) as excinfo:
            migrate.check_schema(engine)

        assert excinfo.value.code == "schema_out_of_date"
        assert excinfo.value.context["current"] == []
        assert excinfo.value.context["required"] == sorted(migrate.head_revisions())
