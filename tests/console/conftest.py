"""Browser fixtures: Playwright drives the system's Chromium (Debian's ``chromium`` package,
which ``make test`` installs when missing); Playwright's own browser download is not reachable
here. No browser is a failure, never a skip."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"


def chromium_path() -> str:
    for name in (os.environ.get("REGISTRY_TEST_CHROMIUM"), "chromium", "chromium-browser"):
        if name and (found := shutil.which(name)):
            return found
    pytest.fail(
        "no Chromium to drive: install it (apt-get install -y --no-install-recommends chromium)"
        " or point REGISTRY_TEST_CHROMIUM at one",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {
        **browser_type_launch_args,
        "executable_path": chromium_path(),
        "args": ["--no-sandbox", "--disable-dev-shm-usage"],
    }


@pytest.fixture
def shot() -> Any:
    """Save a full-page screenshot of a page as a test artifact (test-artifacts/console/)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


# The OpenID Connect provider and the console server signing in through it (tests/console/oidc.py).
from tests.console.oidc import oidc_provider, sso_server  # noqa: E402, F401
