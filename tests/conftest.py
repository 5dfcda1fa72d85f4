"""Suite-wide pytest set-up.

- Registers the ``browser`` marker. Every test under ``tests/browser/`` gets it automatically, so
  ``pytest -m "not browser"`` runs everything but the Chromium tests.
- Shares the web tests' fixtures: ``client`` (a TestClient of a fresh app, one per test module) and the
  scenario runs ``getpid_run`` and ``dd_run`` (recorded once per session: a run is immutable).
- Points pytest-playwright at Debian's Chromium (``/usr/bin/chromium``, installed by ``make test``).
  Never run ``playwright install``: its browser downloads cannot be fetched here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from sim.run import Run, record
from sim.scenarios.registry import lookup

BROWSER_TESTS_DIR = Path(__file__).parent / "browser"

# The suite makes hundreds of new runs from one client: the public app's rate limit (app/rate_limit.py) is off
# here, and tests/test_limits_http.py turns it on where it is the subject.
os.environ.setdefault("TRAPSCOPE_RATE_LIMIT", "off")
os.environ.setdefault("TRAPSCOPE_ROOM_RATE_LIMIT", "off")
# Each app a test makes records in its own thread: a recording process each (the default, app/recorder_process.py)
# would outlive apps whose shutdown a TestClient never runs. tests/test_recorder_process.py and the browser tests'
# live server use the process, as `trapscope serve` does.
os.environ.setdefault("TRAPSCOPE_RECORDER", "thread")  # rooms opened per client: tests/test_rooms.py turns it on

#: Debian's Chromium; TRAPSCOPE_CHROMIUM overrides it (e.g. a developer's own build).
CHROMIUM = os.environ.get("TRAPSCOPE_CHROMIUM", "/usr/bin/chromium")

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "browser: drives real Chromium through Playwright (tests/browser/); deselect with -m 'not browser'",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if BROWSER_TESTS_DIR in item.path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """pytest-playwright's launch options, with Debian's Chromium and flags for a headless root CI box."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} not found: run `make test` (it apt-get installs Debian's chromium) or "
            "`apt-get install chromium`; do not run `playwright install`.",
            pytrace=False,
        )
    args = list(CHROMIUM_ARGS)
    if browser_type_launch_args.get("headless") is False:  # pytest --headed
        args.remove("--headless")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": args}


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app()) as client:
        yield client


@pytest.fixture(scope="session")
def getpid_run() -> Run:
    return record(lookup("getpid").spec())


@pytest.fixture(scope="session")
def dd_run() -> Run:
    return record(lookup("dd-system-time").spec())
