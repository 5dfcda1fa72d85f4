"""Recording in a process of its own, so that a new run never holds the event loop's GIL.

A recording is seconds of pure-Python CPU. In a thread it shares the server's one GIL with the event loop, which
then serves followers and cached steps at half speed or less: under the lecture's load (bench/lecture_load.py,
2 cores) the p99 step took seconds while a run recorded. Here a child process records the run and derives the
stepper's views on the other core. The server unpickles the result on the event loop itself, pickle after pickle
for a few milliseconds at a time (a dd bs=10m run: ~0.15 s in ~470 pickles, most under 1 ms, the largest ~10 ms),
requests and broadcasts being served in between. Unpickled in the recording thread instead, it made the event
loop wait for the GIL after each of its system calls (up to the switch interval each, and a broadcast to 300
followers is 300 socket writes) for as long as the unpickling ran. The child is replaced after TASKS_PER_CHILD
recordings, so the memory a recording's peak took (allocator fragmentation included) is given back with it.

The result crosses as a list of pickles (`pack`/`unpack`): the events in chunks first, then the replay's parts
(checkpoints, keyed tables, the run), then each derived view's parts, the views, and last the replay and views.
Objects an earlier pickle holds (every event, the events tuple, every earlier part) are written by reference
(pickle's persistent ids), so nothing is duplicated and every reference of the original graph is kept.
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import os
import pickle
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from app.runs import CachedRun
from sim.run import Run, RunSpec

EVENTS_PER_PICKLE = 5_000  # ~3 ms of unpickling each (dd's events)
UNPACK_TURN_S = 0.004  # how long unpacking holds the event loop before other tasks' turn (plus one pickle at most)
TASKS_PER_CHILD = 20  # recordings before the child is replaced (~50 ms to fork a new one from the forkserver)
_PRELOAD = ["app.main"]  # what the forkserver imports once, so each child starts with the simulator loaded
Packed = tuple[list[bytes], list[bytes], int]  # pickles of the events, pickles of what holds them, bytes unpacked


def recorder_process_from_env() -> RecorderProcess | None:
    """TRAPSCOPE_RECORDER: `process` (the default: a child process records) or `thread` (the recording thread
    records, in this process: what tests that hand the cache a recorder of their own need)."""
    where = os.environ.get("TRAPSCOPE_RECORDER", "process").strip() or "process"
    if where not in ("process", "thread"):
        raise ValueError(f"TRAPSCOPE_RECORDER must be process or thread, not {where[:20]!r}")
    return RecorderProcess() if where == "process" else None


class RecordingFailed(RuntimeError):
    """The child failed for a reason that is not a refusal: its traceback, as text."""


class RecorderProcess:
    """One child process that records runs; `record` is called from a recording thread (app/admission.py), which
    waits for the child (releasing the GIL) and then unpacks the run."""

    def __init__(self, tasks_per_child: int = TASKS_PER_CHILD) -> None:
        context = multiprocessing.get_context("forkserver")  # fork is unsafe in a threaded server; spawn is slow
        context.set_forkserver_preload(_PRELOAD)
        self._executor = ProcessPoolExecutor(
            1, mp_context=context, max_tasks_per_child=tasks_per_child, initializer=_exit_with_parent
        )

    def record(
        self, recorder: Callable[[RunSpec], Run], spec: RunSpec, prepare: Callable[[CachedRun], Any] | None
    ) -> Packed:
        outcome, result = self._executor.submit(_record_packed, recorder, spec, prepare).result()
        if outcome == "raised":
            raise pickle.loads(result)
        if outcome == "failed":
            raise RecordingFailed(result)
        return result

    async def unpack(self, packed: Packed) -> CachedRun:
        """On the event loop, pickle after pickle for UNPACK_TURN_S at most, then other tasks run, and so on."""
        turn_ends = time.perf_counter() + UNPACK_TURN_S
        for cached in _unpacking(packed):
            if cached is not None:
                return cached
            if time.perf_counter() >= turn_ends:
                await asyncio.sleep(0)
                turn_ends = time.perf_counter() + UNPACK_TURN_S
        raise AssertionError("unpacking ends with the run")

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _exit_with_parent() -> None:
    """In the child: exit when the server does, however it ends. The executor stops its child when it is shut down,
    but a server killed, or one that never shuts its app down, would leave the child waiting for work forever (it
    holds its own work queue's other end), and the forkserver with it."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_when_joined, args=(parent,), daemon=True, name="parent-watch").start()


def _exit_when_joined(parent: multiprocessing.process.BaseProcess) -> None:
    parent.join()
    os._exit(0)


def _record_packed(
    recorder: Callable[[RunSpec], Run], spec: RunSpec, prepare: Callable[[CachedRun], Any] | None
) -> tuple[str, Any]:
    """In the child: record and derive, as app/runs.py does in a thread, then pack. An error crosses as itself when
    it survives pickling (a refusal: RunError, BadParameter), else as its traceback's text (an exception whose
    constructor takes other arguments than it keeps would not be rebuilt on the other side)."""
    try:
        cached = CachedRun(recorder(spec))
        if prepare is not None:
            prepare(cached)
        return "recorded", pack(cached)
    except Exception as error:
        try:
            pickled = pickle.dumps(error.with_traceback(None))
            pickle.loads(pickled)
        except Exception:
            return "failed", traceback.format_exc()
        return "raised", pickled


def _parts(cached: CachedRun) -> Iterator[object]:
    """What holds the events, in pieces, each piece before whatever holds it: a big view pickled whole would hold
    the event loop for tens of milliseconds as it is unpickled."""
    yield from _leaves_first(cached.replay, depth=2)  # its checkpoints and keyed tables, the run, then itself
    yield from _leaves_first(cached.derived_views(), depth=4)
    yield cached.replay, cached.derived_views()  # what `unpack` gives back: two references


def _leaves_first(obj: object, depth: int) -> Iterator[object]:
    if depth:
        children = obj.values() if isinstance(obj, dict) else getattr(obj, "__dict__", {}).values()
        for child in children:
            yield from _leaves_first(child, depth - 1)
    yield obj


def pack(cached: CachedRun) -> Packed:
    """The run as (pickles of its events, in chunks; pickles of what holds them; its size as unpacked).

    The size is measured on an unpacked copy, here in the child: unpickled, the run takes ~35% more memory than
    as recorded (pickle does not share ints, nor an object between two pickles of events), and the run cache's
    byte bound must count what the server will hold. Measuring there would hold the GIL ~0.1 s in one go."""
    events = cached.run.events
    chunks = [
        pickle.dumps(events[start : start + EVENTS_PER_PICKLE], protocol=pickle.HIGHEST_PROTOCOL)
        for start in range(0, len(events), EVENTS_PER_PICKLE)
    ]
    # What a pickle may refer to instead of holding: an event by its index, the events, and anything an earlier
    # pickle holds, by (that pickle, its memo index), which the unpickler's memo gives back in the same order.
    known: dict[int, object] = {id(event): index for index, event in enumerate(events)}
    known[id(events)] = "events"
    memos = []  # each pickler's memo holds what it names alive, so no id in `known` is reused while packing
    parts = []
    for number, part in enumerate(_parts(cached)):
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.persistent_id = lambda obj: known.get(id(obj))
        pickler.dump(part)
        parts.append(buffer.getvalue())
        memos.append(pickler.memo.copy())
        for obj_id, (memo_index, _obj) in memos[-1].items():
            known.setdefault(obj_id, (number, memo_index))
    copy = unpack((chunks, parts, 0))
    copy.measure()
    return chunks, parts, copy.nbytes


def unpack(packed: Packed) -> CachedRun:
    """`pack`'s inverse, at once."""
    *_, cached = _unpacking(packed)
    return cached


def _unpacking(packed: Packed) -> Iterator[CachedRun | None]:
    """`pack`'s inverse, a pickle at a time: None after each but the last, then the run."""
    chunks, parts, nbytes = packed
    collected: list = []
    for chunk in chunks:
        collected.extend(pickle.loads(chunk))
        yield None
    events = tuple(collected)
    del collected
    memos: list[dict[int, object]] = []

    def persistent_load(pid: object) -> object:
        if isinstance(pid, int):
            return events[pid]
        if pid == "events":
            return events
        number, memo_index = pid
        return memos[number][memo_index]

    for number, data in enumerate(parts):
        unpickler = pickle.Unpickler(io.BytesIO(data))
        unpickler.persistent_load = persistent_load
        loaded = unpickler.load()
        memos.append(unpickler.memo.copy())
        if number < len(parts) - 1:
            yield None
    replay, derived = loaded
    yield CachedRun.restored(replay.run, replay, derived, nbytes)
