"""Fixtures shared by every test package (see tests/fixtures/)."""

from tests.fixtures.app import admin_token, anon_client, client, settings
from tests.fixtures.db import database_url
from tests.fixtures.server import live_server

__all__ = ["admin_token", "anon_client", "client", "database_url", "live_server", "settings"]
