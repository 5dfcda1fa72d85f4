"""The latency view and the ring timeline for runs with more than one thread: children (fork), threads
(thr_new), kernel threads (the syncer, the AIO daemon) and an idle CPU. Time is billed as FreeBSD bills it:
the program's system time is its threads' time in ring 0, what time(1) reports; the idle CPU and kernel threads
are shown as their own categories, never as a system call's."""

from __future__ import annotations

import html
import json
import re

import pytest

from app.figures import timeline_data
from app.navigate import LogIndex
from app.view_latency import LatencyIndex, format_ns, latency_view
from sim.core.events import DiskWait
from sim.machine.cpu import USER_CPL
from sim.run import Run, RunSpec, record
from sim.scenarios.registry import SCENARIOS
from sim.trace.flame import flame_from_run
from tests.steps import scenario_run

PANEL = {"HX-Request": "true", "HX-Target": "section#step-panel"}


def latency_of(run: Run) -> tuple[LogIndex, LatencyIndex]:
    index = LogIndex(run.events)
    return index, LatencyIndex(index, run.events, run.initial_registers["cpl"], run.threads)


def at_last_step(run: Run):
    index, latency = latency_of(run)
    return latency_view(latency, index.last_step, run.events[-1].t_ns)


@pytest.mark.parametrize("slug", sorted(SCENARIOS))
def test_the_program_s_system_and_user_time_are_what_time_reports(slug):
    """Every step's time is billed to the thread on the CPU and its ring, as the kernel's rusage accounting does,
    so at the run's end the view's figures equal the run summary's (the process and its reaped children) exactly;
    a pager's disk wait (mmap-file's hard faults, the page daemon's swapping) is nobody's."""
    run = scenario_run(slug)
    view = at_last_step(run)
    assert view.system_ns == run.sys_ns
    assert view.user_ns == run.user_ns
    assert f"has run {view.system} for this program" in view.answer


@pytest.mark.parametrize("slug", ["mmap-file", "pagedaemon"])
def test_a_pager_s_disk_wait_is_off_the_cpu_not_system_time(slug):
    """A hard fault's disk wait idles the CPU inside the fault: the latency view shows it as a wait, not system
    time (the trap's DTrace-style wall time still holds it), and the timeline draws the CPU halted meanwhile."""
    run = scenario_run(slug)
    waits = sum(event.data.ns for event in run.events if isinstance(event.data, DiskWait))
    view = at_last_step(run)
    assert waits > 0 and view.disk_wait_ns == waits
    assert view.trap_ns > waits
    accounted = view.user_ns + view.system_ns + view.kthread_ns + view.idle_ns + view.disk_wait_ns
    assert accounted == run.events[-1].t_ns
    assert "The traps' time includes" in view.detail and "waiting for the disk" in view.detail
    program = next(stretches for name, stretches in lanes_of(run).items() if name.endswith("pid 1000"))
    halted = sum(end - start for start, end, code in program if code == "h")
    assert halted == waits
    comm = next(comm for pid, comm in run.threads.values() if pid == 1000)
    on_cpu = flame_from_run(run).stacks
    assert sum(ns for stack, ns in on_cpu.items() if stack[:2] == (comm, "-")) == run.sys_ns, "the flame graph too"


def test_after_write_file_exits_the_idle_cpu_and_the_syncer_are_not_its_exit_call():
    run = scenario_run("write-file")
    view = at_last_step(run)
    bars = dict(zip(view.bars["names"], view.bars["values"], strict=True))
    exit_ns = bars["syscall · exit ×1"]
    assert exit_ns < 1_000_000, "exit() ends when its thread leaves the CPU for good, not 31 s later"
    assert view.syscall_ns < 1_000_000, "the system calls' wall time fits in the process's life"
    assert view.idle_ns > 30_000_000_000, "the syncer wakes once a second for ~30 s: the CPU halts in between"
    assert bars["kernel thread · syncer"] > 0
    assert view.kthread_ns + view.idle_ns + view.system_ns + view.user_ns == run.events[-1].t_ns
    assert "The CPU idled 31.00 s" in view.detail and "syncer" in view.detail


def test_a_system_call_that_sleeps_counts_its_wait_as_wall_time_but_not_as_system_time():
    """write-file -s's fsync() sleeps on the disk (biowr) while the CPU halts: DTrace's timestamps include the
    wait, time(1)'s system time does not, and the answer says how long the threads were off the CPU. (dd's reads
    no longer sleep: rtld's files are in the buffer cache, as on a booted system.)"""
    run = record(RunSpec("write-file -s"))
    index, latency = latency_of(run)
    halt = index.positions("proc", "cpu_idle")[0]
    halted_ns = run.events[halt].t_ns - run.events[halt - 1].t_ns
    view = latency_view(latency, halt, run.events[halt].t_ns)
    fsync_ns = dict(zip(view.bars["names"], view.bars["values"], strict=True))["syscall · fsync ×1"]
    assert fsync_ns > halted_ns
    assert view.idle_ns == halted_ns
    on_cpu = latency.cpu_at(halt, run.events[halt].t_ns)
    assert on_cpu[("system", "syscall")] < view.syscall_ns - halted_ns
    assert "spent off the CPU" in view.detail


def dtrace_wall_times(run: Run) -> tuple[int, int, int, int]:
    """(syscall ns, syscalls, trap ns, traps) for a one-thread program, straight from the log: each kernel entry
    from its ring change (syscall or trap) to the ring change back, or to the run's end."""
    syscall_ns = trap_ns = syscalls = traps = 0
    entered = None
    for step, event in enumerate(run.events):
        for delta in event.deltas:
            if delta[:2] == ("reg", "cpl"):
                if delta[3] != USER_CPL:
                    entered = (step, event)
                else:
                    start_step, start = entered
                    if start.kind == "trap":
                        trap_ns, traps = trap_ns + event.t_ns - start.t_ns, traps + 1
                    else:
                        syscall_ns, syscalls = syscall_ns + event.t_ns - start.t_ns, syscalls + 1
                    entered = None
    if entered is not None:  # exit(): never returns
        syscall_ns, syscalls = syscall_ns + run.events[-1].t_ns - entered[1].t_ns, syscalls + 1
    return syscall_ns, syscalls, trap_ns, traps


def test_dd_s_figures_are_its_kernel_entries_timed_as_before(dd_run):
    """dd is one thread: its system calls' and traps' times are still entry to exit on the log, the sleeping
    reads included, and the lecture's answer still holds (the traps, not the system calls, are the time)."""
    view = at_last_step(dd_run)
    syscall_ns, syscalls, trap_ns, traps = dtrace_wall_times(dd_run)
    assert (view.syscall_ns, view.syscalls, view.trap_ns, view.traps) == (syscall_ns, syscalls, trap_ns, traps)
    assert syscalls == dd_run.syscalls
    assert view.bars["names"][0] == "trap · page fault: zero_fill ×5,143"
    assert view.bars["categories"][-1] == "kthread", "kernel threads come after the program's own bars"
    share = int(re.search(r"\((\d+)% of system time\)", view.answer).group(1))
    assert share > 90


def test_fork_bills_both_processes_and_the_child_s_first_return():
    run = scenario_run("fork-returns-twice")
    view = at_last_step(run)
    assert "new thread · fork_exit ×1" in view.bars["names"]
    assert "starting 1 new thread (fork_exit)" in view.answer
    pids = {pid for pid, _ in run.threads.values() if pid >= 1000}
    assert len(pids) == 2


def lanes_of(run: Run) -> dict[str, list[tuple[int, int, str]]]:
    data = timeline_data(LogIndex(run.events), run.events, run.initial_registers["cpl"], run.threads)
    lanes = {}
    for lane in data["lanes"]:
        starts, total = [], 0
        for delta in lane["t"]:
            total += delta
            starts.append(total)
        lanes[lane["name"]] = [(a, a + d, c) for a, d, c in zip(starts, lane["d"], lane["c"], strict=True)]
    return lanes


def test_the_timeline_has_a_lane_per_thread_covering_the_run_once():
    run = scenario_run("write-file")
    lanes = lanes_of(run)
    assert list(lanes) == ["write-file · pid 1000", "syncer · pid 12", "idle · pid 11"]
    stretches = sorted(s for lane in lanes.values() for s in lane)
    assert stretches[0][0] == 0 and stretches[-1][1] == run.events[-1].t_ns
    assert all(a[1] == b[0] for a, b in zip(stretches, stretches[1:], strict=False))  # no gap, no overlap
    halted = sum(end - start for start, end, code in lanes["idle · pid 11"] if code == "h")
    assert halted == at_last_step(run).idle_ns
    assert {code for _, _, code in lanes["syncer · pid 12"]} == {"k"}  # a kernel thread never leaves ring 0
    data = timeline_data(LogIndex(run.events), run.events, run.initial_registers["cpl"], run.threads)
    assert len(json.dumps(data["lanes"])) < 4_000, "a few stretches a second of idle: sent once with the page"


def test_the_syncer_lane_starts_when_cpu_switch_hands_it_the_cpu_as_the_narrative_says():
    run = scenario_run("write-file")
    switch = next(i for i, e in enumerate(run.events) if ("thread", 100000, 100002) in e.deltas)
    syncer_start = lanes_of(run)["syncer · pid 12"][0][0]
    assert syncer_start == run.events[switch].t_ns  # the narrative's ~16.0 us, not cpu_switch's entry
    enter = next(
        i for i in range(switch, 0, -1) if run.events[i].kind == "enter" and run.events[i].name == "cpu_switch"
    )
    assert run.events[enter].t_ns < syncer_start  # the switch itself runs on the old thread, in its lane


def test_threads_of_one_process_get_a_lane_each_and_processes_their_own():
    threads = lanes_of(scenario_run("pthread-create"))
    assert [name for name in threads if name.startswith("thread · pid 1000 · tid ")] and len(threads) == 3
    forked = lanes_of(scenario_run("fork-returns-twice"))
    assert [name.split(" · ")[1] for name in forked][:2] == ["pid 1000", "pid 1001"]


def test_the_latency_panel_shows_idle_and_kernel_threads_apart(client):
    run = scenario_run("write-file")
    last = len(run.events) - 1
    page = client.get(f"/scenarios/write-file?step={last}&views=latency", headers=PANEL).text
    answer = html.unescape(re.search(r'<p class="latency-answer"[^>]*>(.*?)</p>', page, re.S).group(1))
    detail = html.unescape(re.search(r'<p class="latency-detail"[^>]*>(.*?)</p>', page, re.S).group(1))
    assert "inside 11 system calls" in answer and "The CPU idled" in detail
    bars = json.loads(re.search(r'<script type="application/json" id="latency-bars">(.*?)</script>', page).group(1))
    assert "CPU idle (hlt)" in page and "kernel thread · syncer" in bars["names"]
    system = html.unescape(re.search(r'<dd id="latency-system">(.*?)</dd>', page).group(1))
    assert system == format_ns(run.sys_ns)
