"""Admission control for recordings: a few threads of their own and a short queue; beyond it, a 503 at once.

Recording a run (and deriving its stepper's index) is seconds of CPU under the GIL. In starlette's shared
threadpool, 45 new runs asked at once took every thread, and a step of a run already cached, which needs a
thread for a few milliseconds, waited 52 s behind them. Here recordings run in their own pool
(TRAPSCOPE_RECORDING_THREADS, default 1: more threads share one GIL and only slow the event loop), at most
TRAPSCOPE_RECORDING_QUEUE more wait (default 8: a dd run records in ~1 s, so the last waits ~9 s), and a
recording beyond that is refused with 503 and Retry-After while cached steps are served as before. /readyz says
whether this process takes new runs now (app/readiness.py).
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from fastapi import HTTPException

from app import metrics

T = TypeVar("T")

DEFAULT_THREADS = 1
DEFAULT_QUEUE = 8
_COUNT = re.compile(r"[0-9]{1,4}")
_SMOOTHING = 0.3  # weight of the latest recording's duration in the running estimate


class RecordingsBusy(HTTPException):
    """Every recording thread is busy and the queue is full: a 503 that says when to come back."""

    def __init__(self, threads: int, queue: int, retry_after_s: int) -> None:
        super().__init__(
            503,
            f"the server is recording as many new runs as it takes at once ({threads} recording and {queue} "
            f"waiting); try again in {retry_after_s} s. Steps of runs already recorded are served meanwhile.",
            headers={"Retry-After": str(retry_after_s)},
        )


@dataclass(frozen=True)
class Load:
    """What the pool is doing now, for /readyz and metrics."""

    running: int
    waiting: int
    threads: int
    queue: int

    @property
    def full(self) -> bool:
        return self.running + self.waiting >= self.threads + self.queue


class RecordingPool:
    """A bounded thread pool for recordings: `threads` run at once, `queue` more wait, others are refused."""

    def __init__(self, threads: int = DEFAULT_THREADS, queue: int = DEFAULT_QUEUE) -> None:
        if threads < 1 or queue < 0:
            raise ValueError("a recording pool needs at least one thread and a queue of zero or more")
        self.threads, self.queue = threads, queue
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="recording")
        self._lock = threading.Lock()
        self._admitted = 0  # running or waiting, until the work itself is done (not when its requester leaves)
        self._mean_s = 1.0  # a recording's duration, smoothed: what Retry-After is estimated from

    @classmethod
    def from_env(cls) -> RecordingPool:
        return cls(
            _env_count("TRAPSCOPE_RECORDING_THREADS", DEFAULT_THREADS),
            _env_count("TRAPSCOPE_RECORDING_QUEUE", DEFAULT_QUEUE),
        )

    def load(self) -> Load:
        with self._lock:
            admitted = self._admitted
        running = min(admitted, self.threads)
        return Load(running, admitted - running, self.threads, self.queue)

    def retry_after_s(self) -> int:
        """About when the work admitted now will be done."""
        return max(1, math.ceil(self._mean_s * (self.load().waiting / self.threads + 1)))

    async def run(self, work: Callable[..., T], *args: object) -> T:
        """`work(*args)` in a recording thread, or RecordingsBusy at once if the pool and its queue are full."""
        with self._lock:
            full = self._admitted >= self.threads + self.queue
            if not full:
                self._admitted += 1
        if full:
            metrics.recording_refused()
            raise RecordingsBusy(self.threads, self.queue, self.retry_after_s())
        try:
            future = self._executor.submit(self._timed, work, *args)
        except BaseException:
            self._release(None)
            raise
        future.add_done_callback(self._release)  # also when a waiting job is cancelled (its requester left)
        self._count_waiting()
        return await asyncio.wrap_future(future)

    def _timed(self, work: Callable[..., T], *args: object) -> T:
        start = time.monotonic()
        try:
            with metrics.recording():
                return work(*args)
        finally:
            self._mean_s += _SMOOTHING * (time.monotonic() - start - self._mean_s)

    def _release(self, _: Future | None) -> None:
        with self._lock:
            self._admitted -= 1
        self._count_waiting()

    def _count_waiting(self) -> None:
        metrics.recordings_waiting(self.load().waiting)


def _env_count(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not _COUNT.fullmatch(raw):
        raise ValueError(f"{name} must be a whole number such as {default}, not {raw[:20]!r}")
    return int(raw)
