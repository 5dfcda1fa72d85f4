"""The run cache behind every page and API call, and the timeline figure built from a run."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

from app.figures import focus_window, ring_intervals, timeline_data, timeline_layout
from app.navigate import LogIndex
from app.runs import RunCache
from sim.machine.cpu import KERNEL_CPL, USER_CPL
from sim.replay import Replay
from sim.run import RunError, RunSpec, record


def run_in_fresh_loop(scenario):
    """asyncio.run in a thread of its own: Playwright's sync API may already run a loop in this thread."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, scenario()).result()


class CountingRecorder:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, spec: RunSpec):
        with self.lock:
            self.calls.append(spec.command)
        return record(spec)


def test_a_cached_run_is_recorded_once_and_the_oldest_is_evicted():
    recorder = CountingRecorder()
    cache = RunCache(max_runs=2, recorder=recorder)

    async def scenario():
        first = await cache.get(RunSpec("getpid"))
        assert await cache.get(RunSpec("getpid")) is first
        await cache.get(RunSpec("getpid 2"))
        await cache.get(RunSpec("getpid 3"))  # evicts "getpid", the least recently used
        assert len(cache) == 2
        await cache.get(RunSpec("getpid"))

    run_in_fresh_loop(scenario)
    assert recorder.calls == ["getpid", "getpid 2", "getpid 3", "getpid"]


def test_concurrent_requests_for_one_run_share_one_recording():
    recorder = CountingRecorder()
    cache = RunCache(recorder=recorder)

    async def scenario():
        return await asyncio.gather(*(cache.get(RunSpec("getpid 5")) for _ in range(8)))

    runs = run_in_fresh_loop(scenario)
    assert recorder.calls == ["getpid 5"]
    assert all(run is runs[0] for run in runs)


def test_a_failed_recording_is_reported_to_every_waiter_and_not_cached():
    def failing(spec: RunSpec):
        raise RunError(f"{spec.command}: too much work")

    cache = RunCache(recorder=failing)

    async def scenario():
        return await asyncio.gather(*(cache.get(RunSpec("getpid")) for _ in range(3)), return_exceptions=True)

    results = run_in_fresh_loop(scenario)
    assert all(isinstance(result, RunError) for result in results)
    assert len(cache) == 0


def test_state_at_answers_from_the_replay():
    cache = RunCache()
    run = record(RunSpec("getpid"))

    async def scenario():
        return await cache.state_at(RunSpec("getpid"), 5)

    cached, state = run_in_fresh_loop(scenario)
    assert state.registers == Replay(run).state_at(5).registers
    assert cached.last_step == len(run.events) - 1


def test_the_focus_window_shows_the_user_time_around_a_syscall(getpid_run):
    intervals = Replay(getpid_run).ring_intervals()
    syscall = next(e for e in getpid_run.events if e.kind == "insn" and e.name == "syscall")
    sysret = next(e for e in getpid_run.events if e.kind == "insn" and e.name == "sysretq")
    start, end = focus_window(intervals, syscall.t_ns, KERNEL_CPL)
    assert start == 0, "the user time before the syscall"
    assert end > sysret.t_ns, "and the return to user mode after it"
    assert [cpl for _, _, cpl in intervals] == [USER_CPL, KERNEL_CPL, USER_CPL, KERNEL_CPL]  # getpid, then exit
    assert end < intervals[-1][1], "but not the whole of exit's teardown"


def test_the_focus_window_at_the_first_step_starts_at_zero(getpid_run):
    intervals = Replay(getpid_run).ring_intervals()
    start, end = focus_window(intervals, 0, USER_CPL)
    assert start == 0 and end > intervals[0][1]


def undelta(values):
    total, out = 0, []
    for value in values:
        total += value
        out.append(total)
    return out


def test_the_index_gives_the_same_ring_intervals_as_the_replay(getpid_run):
    index = LogIndex(getpid_run.events)
    assert ring_intervals(index, getpid_run.initial_registers["cpl"]) == Replay(getpid_run).ring_intervals()


def test_the_timeline_data_holds_every_ring_change_in_the_threads_lane_and_marks_syscalls(getpid_run):
    index = LogIndex(getpid_run.events)
    data = timeline_data(index, getpid_run.events, USER_CPL, getpid_run.threads)
    lane = data["lanes"][0]
    assert lane["name"] == "getpid · pid 1000" and lane["kind"] == "program"
    starts = undelta(lane["t"])
    assert starts[0] == 0 and lane["c"].startswith("uku")  # getpid, then _exit never returns
    cpl_steps = [i for i, e in enumerate(getpid_run.events) if any(d[:2] == ("reg", "cpl") for d in e.deltas)]
    assert starts[1:4] == [getpid_run.events[s].t_ns for s in cpl_steps]  # a ring change ends its step
    assert [lane["name"] for lane in data["lanes"]] == ["getpid · pid 1000", "idle · pid 11"]
    syscalls = data["marks"]["syscall"]
    names = [syscalls["names"][i] for i in syscalls["n"]]
    assert names == ["getpid", "exit"]
    first = undelta(syscalls["s"])[0]
    assert getpid_run.events[first].kind == "insn" and getpid_run.events[first].name == "syscall"
    layout = timeline_layout()
    assert layout["layout"]["shapes"][0]["type"] == "line", "the cursor is shape 0"
    assert layout["config"]["displayModeBar"] is False
