"""Fixtures for browser tests (real Chromium through pytest-playwright).

- ``live_server`` (session): the app served by uvicorn in a subprocess on a free loopback port; yields
  the base URL, e.g. ``"http://127.0.0.1:41234"`` (no trailing slash), once ``/healthz`` answers 200.
- ``base_url`` is overridden to ``live_server``, so ``page.goto("/")`` opens the app.
- ``console_errors``: every page of every browser context made through pytest-playwright's
  ``context``/``page``/``new_context`` fixtures is watched; a test whose pages logged a console error
  (``console.error``, a failed resource load, a CSP violation, ...) or threw an uncaught exception fails.
  Request the fixture to look at the errors, or ``console_errors.clear()`` ones a test provoked on purpose.

Every test in this folder is marked ``browser`` (see tests/conftest.py).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

APP_FACTORY = "app.main:create_app"
STARTUP_TIMEOUT_S = 60.0


# ---------------------------------------------------------------- live server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_status(url: str, timeout: float = 2.0) -> int | None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with opener.open(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()  # SIGTERM: uvicorn shuts down gracefully (bounded by --timeout-graceful-shutdown)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _start(root: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        APP_FACTORY,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--timeout-graceful-shutdown",
        "3",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TRAPSCOPE_RECORDER": "process"}  # as `trapscope serve` does
    with log_path.open("ab") as log:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def live_server(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Serve ``app.main:create_app`` on a free loopback port for the whole session; yield its base URL."""
    log_path = tmp_path_factory.mktemp("live_server") / "uvicorn.log"
    for _attempt in range(3):  # the free port can be taken between probing and binding it
        proc, url = _start(pytestconfig.rootpath, log_path)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while proc.poll() is None and time.monotonic() < deadline:
            if _get_status(url + "/healthz") == 200:
                break
            time.sleep(0.1)
        else:
            _stop(proc)
            log = log_path.read_text(errors="replace")
            if "address already in use" in log.lower():
                continue
            pytest.fail(
                f"live_server: {APP_FACTORY} did not answer 200 on {url}/healthz "
                f"(exit code {proc.returncode}). Server log {log_path}:\n{log[-4000:]}",
                pytrace=False,
            )
        break
    else:
        pytest.fail(f"live_server: no free port after 3 tries; log {log_path}", pytrace=False)
    try:
        yield url
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def base_url(live_server: str) -> str:
    return live_server


# ---------------------------------------------------------------- console errors


class ConsoleErrors:
    """Collects console errors and uncaught exceptions from the pages it is attached to."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.pages: list[Any] = []

    def attach(self, page: Any) -> None:
        if any(p is page for p in self.pages):
            return
        self.pages.append(page)
        page.on("console", lambda msg: self._on_console(page, msg))
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught exception on {page.url}: {exc}"))

    def watch_context(self, context: Any) -> None:
        context.on("page", self.attach)
        for page in context.pages:
            self.attach(page)

    def _on_console(self, page: Any, msg: Any) -> None:
        if msg.type == "error":
            loc = msg.location or {}
            line = loc.get("lineNumber")
            where = f"{loc.get('url') or page.url}:{line + 1 if isinstance(line, int) else '?'}"
            self.errors.append(f"console error at {where}: {msg.text}")

    def flush(self) -> None:
        """Round-trip to every open page so that events already sent by the browser are delivered."""
        for page in self.pages:
            try:
                if not page.is_closed():
                    page.evaluate("0")
            except Exception:  # a page that is navigating or gone has nothing to add
                pass

    def clear(self) -> list[str]:
        errors, self.errors = self.errors, []
        return errors


_CONSOLE_ERRORS = pytest.StashKey[ConsoleErrors]()


@pytest.fixture
def console_errors(request: pytest.FixtureRequest) -> ConsoleErrors:
    collector = ConsoleErrors()
    request.node.stash[_CONSOLE_ERRORS] = collector
    return collector


@pytest.fixture
def new_context(new_context: Callable[..., Any], console_errors: ConsoleErrors) -> Callable[..., Any]:
    """pytest-playwright's ``new_context``, with every context (and so ``context`` and ``page``) watched."""

    def _new_context(**kwargs: Any) -> Any:
        context = new_context(**kwargs)
        console_errors.watch_context(context)
        return context

    return _new_context


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    result = yield  # a test that already failed keeps its own failure
    collector = item.stash.get(_CONSOLE_ERRORS, None)
    if collector is not None:
        collector.flush()
        errors = collector.clear()
        if errors:
            pytest.fail("the page logged errors in the browser console:\n  " + "\n  ".join(errors), pytrace=False)
    return result
