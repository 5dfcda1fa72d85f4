"""The latency view: simulated time so far in each system call and each kind of trap, and in user mode, to answer
the lecture's question about dd: where does system time go?

Each stretch of time in ring 0 that a `syscall` instruction began is one system call (named by its `syscall`
event); one that a trap began is one trap, named by the trap and, for a page fault, by how the VM system
resolved it (zero_fill, cow, ...). Time is wall time, as DTrace's `timestamp` measures it: a system call that
sleeps on the disk includes its wait. Built once per run; a step's figures are bisects into prefix sums.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from app.navigate import LogIndex
from sim.log import Event
from sim.machine.cpu import USER_CPL

MAX_BARS = 14  # the rest are summed into one "other" bar


@dataclass(frozen=True)
class Episode:
    start_step: int
    end_step: int  # the step that returned to user mode (or the run's last step)
    category: str  # "syscall", "trap" or "user"
    name: str
    start_ns: int
    end_ns: int


@dataclass
class _Series:
    ends: list[int]
    sums: list[int]  # prefix sums of durations, aligned with ends
    starts: list[tuple[int, int]]  # (start_step, start_ns) of each episode, for the one in progress


class LatencyIndex:
    def __init__(self, index: LogIndex, events: list[Event], initial_cpl: int) -> None:
        self.episodes = episodes(index, events, initial_cpl)
        series: dict[tuple[str, str], _Series] = {}
        for episode in self.episodes:
            s = series.setdefault((episode.category, episode.name), _Series([], [], []))
            s.ends.append(episode.end_step)
            s.sums.append((s.sums[-1] if s.sums else 0) + episode.end_ns - episode.start_ns)
            s.starts.append((episode.start_step, episode.start_ns))
        self.series = series

    def at(self, step: int, t_ns: int) -> list[tuple[str, str, int, int]]:
        """(category, name, ns so far, episodes so far) for each series, the one in progress counted to `t_ns`."""
        rows = []
        for (category, name), s in self.series.items():
            done = bisect_right(s.ends, step)
            total = s.sums[done - 1] if done else 0
            count = done
            if done < len(s.starts) and s.starts[done][0] <= step:
                total += t_ns - s.starts[done][1]
                count += 1
            if count:
                rows.append((category, name, total, count))
        return rows


def episodes(index: LogIndex, events: list[Event], initial_cpl: int) -> list[Episode]:
    """Every stretch of time in one ring, as a system call, a trap, or user time."""
    found: list[Episode] = []
    syscalls = index.positions("syscall")
    faults = index.positions("fault")
    cpl, since = initial_cpl, 0
    boundaries = [*index.ring_changes, index.last_step]
    next_cpls = [*index.ring_cpl, None]
    for step, new_cpl in zip(boundaries, next_cpls, strict=True):
        if since != step or step == index.last_step:
            start_event = events[since]
            if cpl == USER_CPL:
                category, name = "user", "user mode"
            elif start_event.kind == "trap":
                category, name = "trap", _trap_name(index, events, faults, since, step)
            else:
                category = "syscall"
                dispatched = LogIndex.next_after(syscalls, since)
                name = events[dispatched].name if dispatched is not None and dispatched <= step else "syscall"
            found.append(Episode(since, step, category, name, start_event.t_ns, events[step].t_ns))
        cpl, since = (cpl if new_cpl is None else new_cpl), step
    return found


def _trap_name(index: LogIndex, events: list[Event], faults: list[int], start: int, end: int) -> str:
    trap = events[start].name
    resolved = LogIndex.next_after(faults, start)
    if trap == "#PF" and resolved is not None and resolved <= end:
        return f"page fault: {events[resolved].name}"
    return trap


def format_ns(ns: int) -> str:
    if ns >= 1_000_000:
        return f"{ns / 1_000_000:,.2f} ms"
    if ns >= 1_000:
        return f"{ns / 1_000:,.1f} µs"
    return f"{ns:,} ns"


@dataclass(frozen=True)
class LatencyView:
    bars: dict  # the figure's data for static/trapscope.js: names, values (ns), categories, labels
    user_ns: int
    syscall_ns: int
    trap_ns: int
    syscalls: int
    traps: int
    answer: str  # the lecture's question answered from the figures so far

    @property
    def user(self) -> str:
        return format_ns(self.user_ns)

    @property
    def in_syscalls(self) -> str:
        return format_ns(self.syscall_ns)

    @property
    def in_traps(self) -> str:
        return format_ns(self.trap_ns)


def latency_view(latency: LatencyIndex, step: int, t_ns: int) -> LatencyView:
    rows = latency.at(step, t_ns)
    user = sum(ns for category, _, ns, _ in rows if category == "user")
    syscall_ns = sum(ns for category, _, ns, _ in rows if category == "syscall")
    trap_ns = sum(ns for category, _, ns, _ in rows if category == "trap")
    syscalls = sum(count for category, _, _, count in rows if category == "syscall")
    traps = sum(count for category, _, _, count in rows if category == "trap")
    kernel_rows = sorted((row for row in rows if row[0] != "user"), key=lambda row: -row[2])
    shown, rest = kernel_rows[:MAX_BARS], kernel_rows[MAX_BARS:]
    names = [f"{'trap' if c == 'trap' else 'syscall'} · {name} ×{count:,}" for c, name, _, count in shown]
    values = [ns for _, _, ns, _ in shown]
    categories = [c for c, _, _, _ in shown]
    if rest:
        names.append(f"{len(rest)} others")
        values.append(sum(ns for _, _, ns, _ in rest))
        categories.append("other")
    bars = {
        "names": names,
        "values": values,
        "categories": categories,
        "labels": [format_ns(ns) for ns in values],
    }
    kernel = syscall_ns + trap_ns
    if not kernel:
        answer = "No time in the kernel yet."
    else:
        share = round(100 * trap_ns / kernel)
        answer = (
            f"So far the kernel has run {format_ns(kernel)}: {format_ns(syscall_ns)} inside {syscalls:,} system "
            f"calls and {format_ns(trap_ns)} in {traps:,} traps outside them ({share}% of system time)."
        )
    return LatencyView(bars, user, syscall_ns, trap_ns, syscalls, traps, answer)
