"""The ring timeline's lanes: one per thread, each showing when that thread had the CPU, in ring 3 or ring 0, and
(the idle thread) when the CPU was halted.

A thread has the CPU from the step whose ("thread", old, new) delta puts it there (the start event, or cpu_switch
once it has loaded the new thread's context) until the next such delta: that is the log's own answer to "who is
running". So the switch itself (cpu_switch up to its `movq %rax,%cr3`) is drawn in the lane of the thread that
called it, and write-file's syncer lane starts at 16.0 us, when cpu_switch hands it the CPU, as the narrative
says. (getrusage's accounting is another question: mi_switch bills the switch to the new thread, and the latency
view, app/view_latency.py, follows that; the lanes show the CPU, not the bill.)

A stretch is (start_ns, end_ns, code): "u" ring 3, "k" ring 0, "h" the CPU halted (cpu_idle's step, or a pager's
disk wait: the end of its step, with the waiting thread left in place). A step's time is [time of the step before,
its own t_ns], so a ring change or a switch takes effect at the end of its step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.navigate import LogIndex
from app.view_latency import IDLE_THREAD, KERNEL_PID_LIMIT, disk_waits
from sim.core.log import Event
from sim.machine.cpu import USER_CPL

USER, KERNEL, HALTED = "u", "k", "h"


@dataclass
class Lane:
    tid: int
    pid: int
    comm: str
    kind: str  # "program" (a user process's thread), "kthread" or "idle"
    stretches: list[tuple[int, int, str]] = field(default_factory=list)

    def add(self, start: int, end: int, code: str) -> None:
        if end <= start:
            return
        if self.stretches and self.stretches[-1][1] == start and self.stretches[-1][2] == code:
            self.stretches[-1] = (self.stretches[-1][0], end, code)
        else:
            self.stretches.append((start, end, code))


def _boundaries(index: LogIndex, events: list[Event]) -> list[tuple[int, int, str, int]]:
    """(time, order, what, value) of every change of thread, ring or halt, in time order."""
    times = index.times
    changes: list[tuple[int, int, str, int]] = []
    for step, tid in zip(index.thread_changes, index.thread_tids, strict=True):
        changes.append((times[step - 1] if step else 0, 0, "thread", tid))
    for step, cpl in zip(index.ring_changes, index.ring_cpl, strict=True):
        changes.append((times[step], 1, "cpl", cpl))
    for step in index.positions("proc", "cpu_idle"):
        changes.append((times[step - 1] if step else 0, 3, "halt", 1))
        changes.append((times[step], 2, "halt", 0))  # before a halt that starts as this one ends
    for step, ns in disk_waits(index, events):
        changes.append((times[step] - ns, 3, "halt", 1))
        changes.append((times[step], 2, "halt", 0))
    changes.sort()
    return changes


def thread_lanes(
    index: LogIndex, events: list[Event], initial_cpl: int, threads: dict[int, tuple[int, str]]
) -> list[Lane]:
    """One lane per thread that had the CPU: the program's threads by pid and tid, then kernel threads, then idle."""
    lanes: dict[int, Lane] = {}

    def lane(tid: int) -> Lane:
        if tid not in lanes:
            pid, comm = threads.get(tid, (KERNEL_PID_LIMIT, f"tid {tid}"))
            kind = "idle" if comm == IDLE_THREAD else "kthread" if pid < KERNEL_PID_LIMIT else "program"
            lanes[tid] = Lane(tid, pid, comm, kind)
        return lanes[tid]

    tid = index.thread_tids[0] if index.thread_tids else next(iter(threads), 0)
    cpl, halted, since = initial_cpl, False, 0
    for time, _, what, value in _boundaries(index, events):
        if tid:
            lane(tid).add(since, time, HALTED if halted else USER if cpl == USER_CPL else KERNEL)  # until now
        since = time
        if what == "thread":
            tid = value
        elif what == "cpl":
            cpl = value
        else:
            halted = bool(value)
    if tid:
        code = HALTED if halted else USER if cpl == USER_CPL else KERNEL
        lane(tid).add(since, index.times[index.last_step], code)
    order = {"program": 0, "kthread": 1, "idle": 2}
    return sorted(
        (lane for lane in lanes.values() if lane.stretches), key=lambda one: (order[one.kind], one.pid, one.tid)
    )


def lane_label(lane: Lane, lanes: list[Lane]) -> str:
    """`dd · pid 1000`, with the tid when the process has several threads on the timeline."""
    label = f"{lane.comm} · pid {lane.pid}"
    if sum(1 for other in lanes if other.pid == lane.pid) > 1:
        label += f" · tid {lane.tid}"
    return label


def lanes_data(lanes: list[Lane]) -> list[dict[str, Any]]:
    """Each lane compact for the browser: delta-encoded starts, durations and the codes as one string."""
    out = []
    for lane in lanes:
        starts, previous = [], 0
        for start, _, _ in lane.stretches:
            starts.append(start - previous)
            previous = start
        out.append(
            {
                "name": lane_label(lane, lanes),
                "kind": lane.kind,
                "t": starts,
                "d": [end - start for start, end, _ in lane.stretches],
                "c": "".join(code for _, _, code in lane.stretches),
            }
        )
    return out
