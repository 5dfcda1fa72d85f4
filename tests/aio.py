"""Running a coroutine from a plain test, whatever else the test session has running.

The browser tests run first in a whole-suite run, and Playwright's sync API leaves an event loop running in the
main thread, where asyncio.run() then refuses to start another: so the coroutine gets a thread of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(coroutine) in a fresh thread; its result, or its exception raised here."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-asyncio") as pool:
        return pool.submit(asyncio.run, coroutine).result()
