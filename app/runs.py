"""Recorded runs, cached by run id: a step is answered from the cache, a run it lacks is recorded again.

A run is a pure function of its RunSpec, so evicting one loses nothing but the time to record it again. Recording
and replaying are CPU work, so they run in the threadpool and never block the event loop.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from sim.replay import Replay, StepState
from sim.run import Run, RunSpec, record

DEFAULT_MAX_RUNS = 8  # a lecture steps through a handful of runs; a big recorded run holds ~100 MB


@contextmanager
def collection_paused() -> Iterator[None]:
    """No cyclic garbage collection while a run's index is built: each collection would walk the run's hundreds of
    thousands of events (acyclic tuples, freed by reference counting anyway) and triple the time taken."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class CachedRun:
    """A recorded run with its replay and whatever views have been derived from it once."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.replay = Replay(run)
        self._lock = threading.RLock()  # Replay builds checkpoints lazily: one thread at a time; builds may nest
        self._derived: dict[str, Any] = {}

    @property
    def last_step(self) -> int:
        return self.replay.last_step

    def state_at(self, step: int) -> StepState:
        with self._lock:
            return self.replay.state_at(step)

    def derived(self, name: str, build: Callable[[CachedRun], Any]) -> Any:
        """`build(self)`, computed once per run (a figure, a summary) and kept with the run."""
        with self._lock:
            if name not in self._derived:
                with collection_paused():
                    self._derived[name] = build(self)
            return self._derived[name]


class RunCache:
    """A small LRU of recorded runs. Two requests for the same unrecorded run wait for one recording."""

    def __init__(self, max_runs: int = DEFAULT_MAX_RUNS, recorder: Callable[[RunSpec], Run] = record) -> None:
        self.max_runs = max_runs
        self._record = recorder
        self._runs: OrderedDict[str, CachedRun] = OrderedDict()
        self._recording: dict[str, asyncio.Future[CachedRun]] = {}

    def __len__(self) -> int:
        return len(self._runs)

    async def get(self, spec: RunSpec) -> CachedRun:
        run_id = spec.run_id
        cached = self._runs.get(run_id)
        if cached is not None:
            self._runs.move_to_end(run_id)
            return cached
        pending = self._recording.get(run_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[CachedRun] = asyncio.get_running_loop().create_future()
        self._recording[run_id] = future
        try:
            cached = CachedRun(await run_in_threadpool(self._record, spec))
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved here, so a failure nobody else awaited is not reported as lost
            raise
        finally:
            del self._recording[run_id]
        future.set_result(cached)
        self._runs[run_id] = cached
        while len(self._runs) > self.max_runs:
            self._runs.popitem(last=False)
        return cached

    async def state_at(self, spec: RunSpec, step: int) -> tuple[CachedRun, StepState]:
        cached = await self.get(spec)
        return cached, await run_in_threadpool(cached.state_at, step)


def get_run_cache(request: Request) -> RunCache:
    """The app's run cache (a FastAPI dependency; tests may override it)."""
    return request.app.state.runs
