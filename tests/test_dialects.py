"""The PostgreSQL leg's selection (tests/fixtures/dialects.py): what imports the database, even
through other test modules, runs on both legs; the rest is dialect-free; and a dialect-free
test that opens a connection anyway fails, naming the marker."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.dialects import ROOT, module_touches_database

TESTS = ROOT / "tests"
pytest_plugins = ["pytester"]


@pytest.mark.parametrize(
    ("path", "touches"),
    [
        ("validation/hub/test_adapterhub.py", False),
        ("client/test_router.py", False),
        ("maths/test_merge_lora.py", False),
        ("catalog/test_serve_workers.py", True),  # new_database_url (tests.fixtures.db)
        ("api/test_metrics.py", True),  # registry.db.engine, tests.fixtures.server
        ("mlflow_mirror/test_mirror.py", True),  # tests.fixtures.governance
    ],
)
def test_known_modules_are_classified(path: str, touches: bool) -> None:
    assert module_touches_database(TESTS / path) is touches


def test_a_database_import_counts_through_other_test_modules(tmp_path: Path) -> None:
    relay = tmp_path / "test_relay.py"
    # tests.catalog.test_concurrency imports the server fixtures: the relay touches them too
    relay.write_text("from tests.catalog.test_concurrency import _client\n")
    assert module_touches_database(relay)
    plain = tmp_path / "test_plain.py"
    plain.write_text("from tests.validation.hub.test_adapterhub import validate\n")
    assert not module_touches_database(plain)


def _run_leg(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, dialect: str, source: str
) -> pytest.RunResult:
    """``source`` as a test module of a fresh run of the ``dialect`` leg with the plugin."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("REGISTRY_TEST_DIALECT", dialect)
    pytester.makeconftest('pytest_plugins = ["tests.fixtures.dialects"]\n')
    pytester.makepyfile(test_leg=source)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")


def test_a_dialect_free_test_that_connects_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run_leg(
        pytester,
        monkeypatch,
        "sqlite",
        """
        import importlib

        def test_connects():
            sa = importlib.import_module("sqlalchemy")  # not an import the scan reads
            with sa.create_engine("sqlite://").connect():
                pass

        def test_pure():
            assert 1 + 1 == 2
        """,
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*classified dialect-free*mark it @pytest.mark.database*"])


def test_the_sqlite_leg_marker_needs_a_reason_and_leaves_the_postgresql_leg(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run_leg(
        pytester,
        monkeypatch,
        "postgresql",
        """
        import pytest
        import sqlalchemy  # touches the database: would run on both legs

        @pytest.mark.sqlite_leg("documented defaults")
        def test_walkthrough():
            pass

        def test_both_legs():
            pass
        """,
    )
    result.assert_outcomes(passed=1, deselected=1)
    result = _run_leg(
        pytester,
        monkeypatch,
        "postgresql",
        """
        import pytest

        @pytest.mark.sqlite_leg
        def test_walkthrough():
            pass
        """,
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*sqlite_leg needs a reason*"])
