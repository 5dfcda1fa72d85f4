"""Where the stepping controls lead, answered from an index of the recorded log, never by replaying it.

The index is built once per run in one pass over its events:
  - the positions of each event kind and of each (kind, name), so "the next fault" or "the next entry into
    vm_fault" is a bisect;
  - `frames`, one byte per step: how many kernel frames are open after that step (an `enter` event opens one, an
    `exit` event closes one). Step over and step out are then "the next step whose byte is <= / < this one", a
    regular-expression search that runs in C over the bytes;
  - the steps where the ring (CPL) changes, and every step's time, for the timeline and its click-to-jump;
  - the steps where another thread takes the CPU (the log's ("thread", old_tid, new_tid) deltas), and the step from
    which the new thread's time counts, for the latency view's and the timeline's who-ran-when.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from operator import attrgetter

from sim.core.log import Event
from sim.core.walker import thread_change

MAX_FRAMES = 255


@dataclass(frozen=True)
class Target:
    """Where a control leads: a step, and why it stopped there (a breakpoint, or the control's own goal)."""

    step: int
    reason: str = ""


class LogIndex:
    def __init__(self, events: list[Event]) -> None:
        # Each pass is a tight loop over one field (attrgetter runs in C): a run has hundreds of thousands of steps.
        by_name: dict[tuple[str, str], list[int]] = {}
        get = by_name.get
        for step, key in enumerate(map(attrgetter("kind", "name"), events)):
            named = get(key)
            if named is None:
                by_name[key] = [step]
            else:
                named.append(step)
        ring_changes: list[int] = []
        ring_cpl: list[int] = []  # the CPL each ring change enters
        for step, deltas in enumerate(map(attrgetter("deltas"), events)):
            if deltas:
                for delta in deltas:
                    if delta[1] == "cpl" and delta[0] == "reg":
                        ring_changes.append(step)
                        ring_cpl.append(delta[3])
                        break
        by_kind: dict[str, list[int]] = {}
        for (kind, _), positions in by_name.items():
            by_kind.setdefault(kind, []).extend(positions)
        for positions in by_kind.values():
            positions.sort()
        try:
            frames = bytearray(map(attrgetter("depth"), events))
        except ValueError:  # a depth outside 0..255: clamp it
            frames = bytearray(min(max(event.depth, 0), MAX_FRAMES) for event in events)
        for step in by_kind.get("exit", ()):  # an exit event's depth still counts the frame it closes
            if frames[step]:
                frames[step] -= 1
        self.frames = bytes(frames)
        self.times = array("q", map(attrgetter("t_ns"), events))
        self.by_kind = by_kind
        self.by_name = by_name
        self.ring_changes = ring_changes
        self.ring_cpl = ring_cpl
        self.syscall_insns = by_name.get(("insn", "syscall"), [])
        self.last_step = len(events) - 1
        self._index_thread_switches(events)

    def _index_thread_switches(self, events: list[Event]) -> None:
        """thread_changes[i]: the step whose ("thread", old, new) delta puts thread_tids[i] on the CPU (leaving
        thread_left[i]); thread_starts[i]: the first step whose time is the new thread's. mi_switch bills the time
        up to the switch to the old thread and the switch itself (cpu_switch or, for an exiting thread,
        sched_throw) to the new one, so the new thread's time starts after the switch function's `enter` step.
        The recorder writes the delta only into the run's `start` event and the switch's own `proc` event."""
        changes, tids, left, starts = [], [], [], []
        switch_entries = sorted(self.positions("enter", "cpu_switch") + self.positions("enter", "sched_throw"))
        for step in sorted(self.positions("start") + self.positions("proc")):
            change = thread_change(events[step].deltas)
            if change is not None:
                entered = self.previous_before(switch_entries, step)
                after_previous = entered is not None and (not changes or entered > changes[-1])
                starts.append(entered + 1 if after_previous else step)
                changes.append(step)
                left.append(change[0])
                tids.append(change[1])
        self.thread_changes: list[int] = changes
        self.thread_tids: list[int] = tids
        self.thread_left: list[int] = left
        self.thread_starts: list[int] = starts

    # -- simple lookups -------------------------------------------------------------------------------------------

    def positions(self, kind: str, name: str | None = None) -> list[int]:
        return self.by_kind.get(kind, []) if name is None else self.by_name.get((kind, name), [])

    @staticmethod
    def next_after(positions: list[int], step: int) -> int | None:
        i = bisect_right(positions, step)
        return positions[i] if i < len(positions) else None

    @staticmethod
    def previous_before(positions: list[int], step: int) -> int | None:
        i = bisect_left(positions, step)
        return positions[i - 1] if i else None

    @staticmethod
    def count_until(positions: list[int], step: int) -> int:
        """How many of `positions` are at or before `step`."""
        return bisect_right(positions, step)

    def step_at_time(self, t_ns: int) -> int:
        """The step running at simulated time `t_ns`: the first step that completed at or after it."""
        i = bisect_left(self.times, t_ns)
        return min(i, self.last_step)

    def frames_at(self, step: int) -> int:
        return self.frames[step]

    # -- step over, step out --------------------------------------------------------------------------------------

    def step_over(self, step: int) -> int | None:
        """The next step at this frame depth or shallower: whatever the current function calls is skipped whole."""
        return self._next_frames_at_most(step, self.frames[step])

    def step_out(self, step: int) -> int | None:
        """The step where the current kernel function returns (None in user mode: no kernel frame to leave)."""
        depth = self.frames[step]
        return self._next_frames_at_most(step, depth - 1) if depth else None

    def _next_frames_at_most(self, step: int, depth: int) -> int | None:
        found = re.compile(b"[\\x00-" + re.escape(bytes([depth])) + b"]").search(self.frames, step + 1)
        return found.start() if found else None

    # -- run to ---------------------------------------------------------------------------------------------------

    def next_ring_change(self, step: int) -> int | None:
        return self.next_after(self.ring_changes, step)

    def next_breakpoint(self, step: int, breakpoints: tuple) -> Target | None:
        """The first step after `step` where one of `breakpoints` (app.params.Breakpoint) is hit."""
        best: Target | None = None
        for breakpoint in breakpoints:
            if breakpoint.kind == "function":
                hit = self.next_after(self.positions("enter", breakpoint.name), step)
            else:
                hit = self.next_after(self.positions(breakpoint.name), step)
            if hit is not None and (best is None or hit < best.step):
                best = Target(hit, f"breakpoint: {breakpoint.label}")
        return best

    def run_to(self, step: int, goal: int | None, breakpoints: tuple) -> Target | None:
        """`goal` (the next syscall, fault, ...), unless a breakpoint is hit first, as a debugger's run would."""
        stop = self.next_breakpoint(step, breakpoints)
        if goal is None:
            return stop
        if stop is not None and stop.step < goal:
            return stop
        return Target(goal)
