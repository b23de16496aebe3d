"""Fixtures shared by every test package (see tests/fixtures/), registered as plugins so that a
test file can live in the directory of the package it tests whatever fixtures it needs.

Order matters: a fixture module is registered (and its asserts rewritten) before any module
that imports it."""

pytest_plugins = [
    "tests.fixtures.db",
    "tests.fixtures.app",
    "tests.fixtures.server",
    "tests.fixtures.catalog",
    "tests.fixtures.governance",
    # S3 servers (moto, SeaweedFS): registered once so that every package shares one of each.
    "tests.fixtures.s3",
    # The PostgreSQL leg runs only the tests that can differ by dialect.
    "tests.fixtures.dialects",
]
