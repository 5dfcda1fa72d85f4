"""Recorded runs, cached by run id: a step is answered from the cache, a run it lacks is recorded again.

A run is a pure function of its RunSpec, so evicting one loses nothing but the time to record it again. Recording
and replaying are CPU work, so they never block the event loop: recordings (and the views derived from a run once)
in the recording pool, behind admission control (app/admission.py), replaying a step in the threadpool.

The cache is bounded by count and by bytes: a run holds ~330 bytes a recorded event with what the stepper derives
from it (dd bs=30m: ~250 MB), so eight big runs would hold 2 GB. A cached run is acyclic data (its events, its
replay, its derived views), so an evicted run is freed at once by reference counting, not by a later collection.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from app import metrics
from app.admission import RecordingPool
from app.memory import estimated_bytes
from app.rate_limit import charge
from sim.replay import Replay, StepState
from sim.run import Run, RunError, RunSpec, record

DEFAULT_MAX_RUNS = 64  # every built-in scenario (40) and the runs a lecture's questions and exercises add
# Every built-in scenario at once (a test checks they fit in half of it), as the server holds them (runs recorded
# in the recording process take ~35% more once unpickled), and a lecture's worth of new runs beside them: with
# 512 MiB, the lecture benchmark's 10 new dd runs evicted scenarios that 50 students were stepping, and their next
# steps waited seconds for them to be recorded again (explorers' p99 step 6.5 s; with 1 GiB, 245 ms).
DEFAULT_MAX_BYTES = 1 << 30


class CachedRun:
    """A recorded run with its replay and whatever views have been derived from it once."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.replay = Replay(run)
        self._lock = threading.RLock()  # Replay builds checkpoints lazily: one thread at a time; builds may nest
        self._derived: dict[str, Any] = {}
        self.measure()

    @classmethod
    def restored(cls, run: Run, replay: Replay, derived: dict[str, Any], nbytes: int) -> CachedRun:
        """A run recorded elsewhere (app/recorder_process.py), with the replay and views made there."""
        cached = cls.__new__(cls)
        cached.run, cached.replay, cached._derived, cached.nbytes = run, replay, derived, nbytes
        cached._lock = threading.RLock()
        return cached

    def derived_views(self) -> dict[str, Any]:
        return self._derived

    def measure(self) -> None:
        """The memory this run holds (`nbytes`): events, replay checkpoints and derived views (app/memory.py)."""
        self.nbytes = estimated_bytes((self.run, self.replay, self._derived))

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
                self._derived[name] = build(self)
                self.measure()
            return self._derived[name]

    def built(self, name: str) -> Any | None:
        """The view `name` if it has been derived already (read without the lock: a dict lookup is atomic)."""
        return self._derived.get(name)


class RecordsElsewhere(Protocol):
    """Records runs outside this process (app/recorder_process.py): `record` is called from a recording thread and
    returns the run packed, `unpack` on the event loop."""

    def record(
        self, recorder: Callable[[RunSpec], Run], spec: RunSpec, prepare: Callable[[CachedRun], Any] | None
    ) -> Any: ...

    async def unpack(self, packed: Any) -> CachedRun: ...

    def shutdown(self) -> None: ...


class RunCache:
    """An LRU of recorded runs, bounded by count and by bytes. Two requests for the same unrecorded run wait for
    one recording. The run just recorded is kept even if it alone exceeds the byte bound: it is being shown.

    The bound is kept whenever a run is admitted or served; views derived from the run being shown (~100 bytes a
    recorded event) are counted from its next request, so the cache may exceed the bound by that much between."""

    def __init__(
        self,
        max_runs: int = DEFAULT_MAX_RUNS,
        recorder: Callable[[RunSpec], Run] = record,
        max_bytes: int = DEFAULT_MAX_BYTES,
        pool: RecordingPool | None = None,
        elsewhere: RecordsElsewhere | None = None,
    ) -> None:
        self.max_runs = max_runs
        self.pool = pool or RecordingPool()
        self.max_bytes = max_bytes
        self._record = recorder
        # Where the pool's thread has a run recorded: in the thread itself (None), or by a child process, the
        # thread only waiting for it and unpacking the result.
        self._elsewhere = elsewhere
        self._runs: OrderedDict[str, CachedRun] = OrderedDict()
        self._recording: dict[str, asyncio.Future[CachedRun]] = {}

    def __len__(self) -> int:
        return len(self._runs)

    @property
    def records_elsewhere(self) -> bool:
        """Whether runs are recorded in another process (this one only unpacks them)."""
        return self._elsewhere is not None

    @property
    def bytes_held(self) -> int:
        """The cached runs' memory, by their own estimates (app/memory.py)."""
        return sum(cached.nbytes for cached in list(self._runs.values()))

    def _evict(self) -> None:
        while len(self._runs) > 1 and (len(self._runs) > self.max_runs or self.bytes_held > self.max_bytes):
            self._runs.popitem(last=False)

    async def get(self, spec: RunSpec, prepare: Callable[[CachedRun], Any] | None = None) -> CachedRun:
        """The run of `spec`, recorded if need be. `prepare` derives what the caller will need from a new run in the
        same turn of the recording pool, so that a run admitted is also shown (not refused, or queued again, then)."""
        run_id = spec.run_id
        cached = self._runs.get(run_id)
        if cached is not None:
            metrics.run_cache_lookup("hit")
            self._runs.move_to_end(run_id)
            self._evict()  # views derived since it was cached may have grown it
            return cached
        pending = self._recording.get(run_id)
        if pending is not None:
            metrics.run_cache_lookup("joined")
            return await asyncio.shield(pending)
        charge()  # a new recording: the client's rate limit (app/rate_limit.py) pays for it, or refuses
        future: asyncio.Future[CachedRun] = asyncio.get_running_loop().create_future()
        self._recording[run_id] = future
        metrics.run_cache_lookup("miss")
        try:
            if self._elsewhere is None:
                cached = await self.pool.run(_cached_run, self._record, spec, prepare)
            else:  # the pool's thread waits for the other process; the run is unpacked here, between other work
                packed = await self.pool.run(self._elsewhere.record, self._record, spec, prepare)
                cached = await self._elsewhere.unpack(packed)
        except BaseException as error:
            if isinstance(error, RunError):
                # A refusal is a message for the person who asked; its traceback would keep the recorder's frames
                # (and what they hold) alive for as long as the error is, in the future and the error handlers.
                error.with_traceback(None)
            future.set_exception(error)
            future.exception()  # retrieved here, so a failure nobody else awaited is not reported as lost
            del future  # this frame, on the error's traceback, must not hold the error (through the future): a cycle
            raise
        finally:
            del self._recording[run_id]
        future.set_result(cached)
        self._runs[run_id] = cached
        self._evict()
        return cached

    def close(self) -> None:
        """Stop the process that records runs, if there is one (the app's shutdown)."""
        if self._elsewhere is not None:
            self._elsewhere.shutdown()

    async def derive(self, cached: CachedRun, name: str, build: Callable[[CachedRun], Any]) -> Any:
        """`cached.derived(name, build)`: a run's first request builds it in the recording pool, as its recording
        was built (seconds for a long run); later ones find it without leaving the event loop."""
        found = cached.built(name)
        if found is not None:
            return found
        return await self.pool.run(cached.derived, name, build)

    async def state_at(self, spec: RunSpec, step: int) -> tuple[CachedRun, StepState]:
        cached = await self.get(spec)
        return cached, await run_in_threadpool(cached.state_at, step)


def _cached_run(
    recorder: Callable[[RunSpec], Run], spec: RunSpec, prepare: Callable[[CachedRun], Any] | None
) -> CachedRun:
    cached = CachedRun(recorder(spec))  # measured in the worker thread, not on the event loop
    if prepare is not None:
        prepare(cached)
    return cached


def get_run_cache(request: Request) -> RunCache:
    """The app's run cache (a FastAPI dependency; tests may override it)."""
    return request.app.state.runs
