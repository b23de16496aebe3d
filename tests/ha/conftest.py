"""The HA test runs on moto's S3 server only: what it proves is about the database failing over,
which a second S3 implementation adds nothing to (tests/fixtures/s3.py)."""

from __future__ import annotations

import pytest

from tests.fixtures.s3 import S3Server


@pytest.fixture(scope="session")
def s3_server(moto_s3_server: S3Server) -> S3Server:
    return moto_s3_server
