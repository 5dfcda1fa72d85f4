"""The latency view: where a run's time went so far, to answer the lecture's question about dd: where does system
time go? It measures two ways, as the lecture's two tools do, and says how they differ.

- As getrusage(2) and time(1) bill it (`cpu`): each step's time belongs to the thread on the CPU and to the ring
  it is in after that step (the simulator bills a ring change's own cost to the ring entered, and a thread switch
  to the thread switched to). The program's system time is its threads' time in ring 0, in system calls, in traps
  and in a new thread's first return (fork_exit). Time the idle thread halts the CPU (cpu_idle) is nobody's; time
  kernel threads run (the syncer, an AIO daemon, the idle thread's callouts and switches) is theirs.
- As DTrace's `timestamp` measures a system call or a trap (`wall`): from the step that enters the kernel to the
  one that leaves it, on the same thread. Our choice for a call whose thread sleeps (dd's read waiting for the
  disk, nanosleep, wait4): it counts the whole wait, while the CPU idled or other threads ran, as a D script
  subtracting entry from return timestamps would; the answer sentence says how much of that was spent asleep.

A pager's disk wait (a hard fault reading a file page or a swapped page, the page daemon writing one to swap) is
the end of its "proc sleep" step (sim/vm/vm_pager.py: the CPU idles, the thread stays put): off the CPU, so it is
nobody's system time, as time(1) has it; DTrace's timestamp would still count it in the fault.

Built once per run; a step's figures are bisects into prefix sums.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

import msgspec

from app.navigate import LogIndex
from sim.core.events import DiskWait
from sim.core.log import Event
from sim.kern.kernel import Kernel
from sim.machine.cpu import KERNEL_CPL, USER_CPL

MAX_BARS = 14  # the program's bars past this many are summed into one "other" bar
KERNEL_PID_LIMIT = Kernel.FIRST_PID  # kproc_create numbers kernel processes (idle, syncer, aiod1) below user pids
IDLE = "idle (cpu_idle, CPU halted)"
WAIT = "wait"  # a pager's disk wait, keyed ("wait", "program") or ("wait", "kthread") by whose thread waited
NEW_THREAD = "fork_exit"  # where a new thread starts: its first return to user mode is not a system call of its own
IDLE_THREAD = "idle"  # the idle thread's comm: its time when the CPU is not halted is callouts and switches
PROGRAM_KINDS = ("syscall", "trap", "start")  # the program's kernel time, by what entered the kernel


# Episode and Slice are Structs the collector never tracks (they hold ints and strings only), as events are: a dd run
# has ~15,000 of them, cached as long as the run is, and every full collection would walk them (and their
# __dict__s, as dataclasses) over all the server's cached runs.
class Episode(msgspec.Struct, frozen=True, gc=False):
    """One entry into the kernel by a program thread, by wall time (the `wall` measure)."""

    start_step: int
    end_step: int  # the step that returned to user mode, the thread's exit, or the run's last step
    category: str  # "syscall", "trap" or "start" (a new thread's first return)
    name: str
    start_ns: int
    end_ns: int
    tid: int


class Slice(msgspec.Struct, frozen=True, gc=False):
    """Steps first..last, all on one thread in one ring (or halted): `key` says whose time it is."""

    first: int
    last: int
    start_ns: int
    end_ns: int
    key: tuple[str, str]  # ("user", ""), ("system", kind), ("kthread", comm), ("idle", IDLE) or (WAIT, whose)


class _Sums:
    """Intervals of one kind, possibly overlapping (two threads in one system call): at(step, t_ns) sums each one's
    part up to t_ns, as (sum of ended ends) - (sum of started starts) + (started - ended) * t_ns."""

    def __init__(self, intervals: list[tuple[int, int, int, int]]) -> None:  # (start_step, start_ns, end_step, end_ns)
        by_start = sorted(intervals, key=lambda i: i[0])
        by_end = sorted(intervals, key=lambda i: i[2])
        self.start_steps = [i[0] for i in by_start]
        self.start_sums = _prefix(i[1] for i in by_start)
        self.end_steps = [i[2] for i in by_end]
        self.end_sums = _prefix(i[3] for i in by_end)

    def at(self, step: int, t_ns: int) -> tuple[int, int]:
        """(ns so far, intervals begun so far)."""
        started = bisect_right(self.start_steps, step)
        ended = bisect_right(self.end_steps, step)
        ns = (self.end_sums[ended - 1] if ended else 0) - (self.start_sums[started - 1] if started else 0)
        return ns + (started - ended) * t_ns, started


def _prefix(values: Iterable[int]) -> list[int]:
    sums, total = [], 0
    for value in values:
        total += value
        sums.append(total)
    return sums


class LatencyIndex:
    def __init__(
        self, index: LogIndex, events: list[Event], initial_cpl: int, threads: dict[int, tuple[int, str]]
    ) -> None:
        self.threads = threads
        self.episodes, self.slices, off_cpu = _walk(index, events, initial_cpl, threads)
        self.wall = _grouped(
            ((e.category, e.name), (e.start_step, e.start_ns, e.end_step, e.end_ns)) for e in self.episodes
        )
        self.cpu = _grouped((s.key, (s.first, s.start_ns, s.last, s.end_ns)) for s in self.slices)
        self.off_cpu = _grouped(((e.category, ""), (e.start_step, e.start_ns, e.end_step, e.end_ns)) for e in off_cpu)

    def wall_at(self, step: int, t_ns: int) -> list[tuple[str, str, int, int]]:
        """(category, name, wall ns so far, episodes so far) for each system call and kind of trap begun."""
        rows = [(c, n, *sums.at(step, t_ns)) for (c, n), sums in self.wall.items()]
        return [row for row in rows if row[3]]

    def cpu_at(self, step: int, t_ns: int) -> dict[tuple[str, str], int]:
        """ns so far by whose time it was (getrusage's measure): see Slice.key."""
        return {key: sums.at(step, t_ns)[0] for key, sums in self.cpu.items()}

    def off_cpu_at(self, step: int, t_ns: int) -> dict[str, int]:
        """ns so far that program threads spent switched out inside an episode, by the episode's category."""
        return {category: sums.at(step, t_ns)[0] for (category, _), sums in self.off_cpu.items()}


def _grouped(pairs: Iterable[tuple[tuple[str, str], tuple[int, int, int, int]]]) -> dict[tuple[str, str], _Sums]:
    groups: dict[tuple[str, str], list[tuple[int, int, int, int]]] = {}
    for key, interval in pairs:
        groups.setdefault(key, []).append(interval)
    return {key: _Sums(intervals) for key, intervals in groups.items()}


def disk_waits(index: LogIndex, events: list[Event]) -> list[tuple[int, int]]:
    """(step, ns) of each pager disk wait: the last ns of that step's time."""
    return [(step, events[step].data.ns) for step in index.positions("proc", "sleep")
            if isinstance(events[step].data, DiskWait)]  # fmt: skip


def is_kernel_thread(threads: dict[int, tuple[int, str]], tid: int) -> bool:
    return threads.get(tid, (KERNEL_PID_LIMIT, ""))[0] < KERNEL_PID_LIMIT


def _walk(
    index: LogIndex, events: list[Event], initial_cpl: int, threads: dict[int, tuple[int, str]]
) -> tuple[list[Episode], list[Slice], list[Episode]]:
    """One pass over the run's boundaries (ring changes, thread switches, halts) in step order."""
    boundaries: list[tuple[int, int, str, tuple[int, ...]]] = []  # (first step of the new state, order, what, data)
    for i, first in enumerate(index.thread_starts):
        boundaries.append((first, 0, "switch", (i,)))
    for step, cpl in zip(index.ring_changes, index.ring_cpl, strict=True):
        # The instruction that changes ring (SYSCALL, a trap's entry, SYSRETQ, IRETQ) is system time either way
        # (sim/machine/machine.py, sim/kern/exception.py): a return to ring 3 counts from the step after it.
        boundaries.append((step if cpl == KERNEL_CPL else step + 1, 1, "ring", (cpl, step)))
    for step in index.positions("proc", "cpu_idle"):
        boundaries.append((step, 2, "halt", (1,)))  # machine.idle: the cpu_idle step's time is the halt
        boundaries.append((step + 1, 2, "halt", (0,)))
    for step, ns in disk_waits(index, events):
        boundaries.append((step, 3, "disk_wait", (ns,)))
    boundaries.sort(key=lambda b: b[:2])  # stable: a return to ring 3 stays before an entry at the next step
    walk = _Walk(index, events, initial_cpl, threads)
    for first, _, what, data in boundaries:
        if first <= index.last_step:
            walk.advance(first)
            getattr(walk, what)(first, *data)
    return walk.finish()


class _Walk:
    """The state between boundaries: the ring, the thread on the CPU, whether it is halted; each program thread's
    open kernel entry (its episode) and, while it is switched out inside one, since when."""

    def __init__(self, index: LogIndex, events: list[Event], cpl: int, threads: dict[int, tuple[int, str]]) -> None:
        self.index, self.events, self.threads, self.times = index, events, threads, index.times
        self.cpl, self.tid, self.halted, self.since = cpl, 0, False, 0
        self.episodes: list[Episode] = []
        self.slices: list[Slice] = []
        self.off_cpu: list[Episode] = []  # stretches a program thread spent switched out inside an episode
        self.open: dict[int, tuple[int, int, str]] = {}  # tid -> (start step, start ns, category)
        self.switched_out: dict[int, tuple[int, int]] = {}  # tid -> (first step, ns) it left the CPU inside one
        self.seen: set[int] = set()

    def _start_ns(self, first: int) -> int:
        return self.times[first - 1] if first else 0

    def _key(self) -> tuple[str, str]:
        if self.halted:
            return ("idle", IDLE)
        if is_kernel_thread(self.threads, self.tid):
            return ("kthread", self.threads[self.tid][1])
        if self.cpl == USER_CPL:
            return ("user", "")
        return ("system", self.open[self.tid][2] if self.tid in self.open else "syscall")

    def advance(self, first: int) -> None:
        """Close the slice before step `first`."""
        if first > self.since:
            self.slices.append(
                Slice(self.since, first - 1, self._start_ns(self.since), self.times[first - 1], self._key())
            )
            self.since = first

    def switch(self, first: int, i: int) -> None:
        index = self.index
        change, left, tid = index.thread_changes[i], index.thread_left[i], index.thread_tids[i]
        if left in self.open:
            if self.events[change].name == "cpu_throw":
                self._close(left, change)  # the thread has exited: its exit() ends as it leaves the CPU
            else:
                self.switched_out[left] = (first, self._start_ns(first))  # asleep, or preempted, in the kernel
        if tid in self.switched_out:
            out_step, out_ns = self.switched_out.pop(tid)
            category = self.open[tid][2]
            self.off_cpu.append(Episode(out_step, first - 1, category, "", out_ns, self._start_ns(first), tid))
        elif tid not in self.seen and self.cpl == KERNEL_CPL and not is_kernel_thread(self.threads, tid):
            self.open[tid] = (first, self._start_ns(first), "start")  # born in the kernel (fork, thr_new)
        self.seen.add(tid)
        self.tid = tid

    def ring(self, first: int, cpl: int, step: int) -> None:
        self.cpl = cpl
        if is_kernel_thread(self.threads, self.tid):
            return
        if cpl == KERNEL_CPL:  # timed from the entering step, as DTrace's entry probe would see it
            self.open[self.tid] = (step, self.times[step], "trap" if self.events[step].kind == "trap" else "syscall")
        elif self.tid in self.open:
            self._close(self.tid, step)

    def halt(self, first: int, halted: int) -> None:
        self.halted = bool(halted)

    def disk_wait(self, step: int, ns: int) -> None:
        """Split the step: its own work, then the wait, billed to nobody; a program thread in the kernel spends the
        wait off the CPU inside its episode (a fault's, as the answer says)."""
        end = self.times[step]
        kthread = is_kernel_thread(self.threads, self.tid)
        self.slices.append(Slice(step, step, self._start_ns(step), end - ns, self._key()))
        self.slices.append(Slice(step, step, end - ns, end, (WAIT, "kthread" if kthread else "program")))
        self.since = step + 1
        if self.tid in self.open and not kthread:
            self.off_cpu.append(Episode(step, step, self.open[self.tid][2], "", end - ns, end, self.tid))

    def _close(self, tid: int, step: int) -> None:
        start, start_ns, category = self.open.pop(tid)
        if category == "trap":
            name = _trap_name(self.index, self.events, self.index.positions("fault"), start, step)
        elif category == "syscall":
            dispatched = LogIndex.next_after(self.index.positions("syscall"), start)
            name = self.events[dispatched].name if dispatched is not None and dispatched <= step else "syscall"
        else:
            name = NEW_THREAD
        self.episodes.append(Episode(start, step, category, name, start_ns, self.times[step], tid))

    def finish(self) -> tuple[list[Episode], list[Slice], list[Episode]]:
        last = self.index.last_step
        self.advance(last + 1)
        for tid, (out_step, out_ns) in self.switched_out.items():
            self.off_cpu.append(Episode(out_step, last, self.open[tid][2], "", out_ns, self.times[last], tid))
        for tid in list(self.open):
            self._close(tid, last)
        return self.episodes, self.slices, self.off_cpu


def _trap_name(index: LogIndex, events: list[Event], faults: list[int], start: int, end: int) -> str:
    trap = events[start].name
    resolved = LogIndex.next_after(faults, start)
    if trap == "#PF" and resolved is not None and resolved <= end:
        return f"page fault: {events[resolved].name}"
    return trap


def format_ns(ns: int) -> str:
    if ns >= 10_000_000_000:
        return f"{ns / 1_000_000_000:,.2f} s"
    if ns >= 1_000_000:
        return f"{ns / 1_000_000:,.2f} ms"
    if ns >= 1_000:
        return f"{ns / 1_000:,.1f} µs"
    return f"{ns:,} ns"


def _formatted(field: str) -> property:
    """A figure in ns as the page shows it."""
    return property(lambda view: format_ns(getattr(view, field)))


@dataclass(frozen=True)
class LatencyView:
    bars: dict  # the figure's data for static/trapscope.js: names, values (ns), categories, labels
    user_ns: int  # the program's user time (getrusage)
    system_ns: int  # the program's system time (getrusage): its threads' time in ring 0
    syscall_ns: int  # wall time inside system calls (DTrace's timestamp), sleeps included
    trap_ns: int  # wall time in traps outside system calls
    syscalls: int
    traps: int
    kthread_ns: int
    idle_ns: int
    disk_wait_ns: int  # pager disk waits: off the CPU, nobody's system time
    answer: str  # the lecture's question answered from the figures so far, in one sentence
    detail: str  # what else the kernel did: sleeps inside system calls, kernel threads, the idle CPU

    user = _formatted("user_ns")
    system = _formatted("system_ns")
    in_syscalls = _formatted("syscall_ns")
    in_traps = _formatted("trap_ns")
    kthreads = _formatted("kthread_ns")
    idle = _formatted("idle_ns")
    disk_wait = _formatted("disk_wait_ns")


def _bar_name(category: str, name: str, count: int) -> str:
    if category == "start":
        return f"new thread · {name} ×{count:,}"
    return f"{category} · {name} ×{count:,}"


def kthread_label(comm: str) -> str:
    return f"kernel thread · {comm}" + (" (callouts, switches)" if comm == IDLE_THREAD else "")


def latency_view(latency: LatencyIndex, step: int, t_ns: int) -> LatencyView:
    rows = latency.wall_at(step, t_ns)
    cpu = latency.cpu_at(step, t_ns)
    wall = {kind: sum(ns for c, _, ns, _ in rows if c == kind) for kind in PROGRAM_KINDS}
    counts = {kind: sum(n for c, _, _, n in rows if c == kind) for kind in PROGRAM_KINDS}
    system = sum(cpu.get(("system", kind), 0) for kind in PROGRAM_KINDS)
    kthreads = sorted(((name, ns) for (c, name), ns in cpu.items() if c == "kthread" and ns), key=lambda r: -r[1])
    idle = cpu.get(("idle", IDLE), 0)
    kthread_wait = cpu.get((WAIT, "kthread"), 0)
    disk_wait = cpu.get((WAIT, "program"), 0) + kthread_wait

    by_time = sorted(rows, key=lambda row: -row[2])
    shown, rest = by_time[:MAX_BARS], by_time[MAX_BARS:]
    names = [_bar_name(c, name, count) for c, name, _, count in shown]
    values = [ns for _, _, ns, _ in shown]
    categories = [c for c, _, _, _ in shown]
    if rest:
        names.append(f"{len(rest)} others")
        values.append(sum(ns for _, _, ns, _ in rest))
        categories.append("other")
    for comm, ns in kthreads:  # after the program's own bars: not its time
        names.append(kthread_label(comm))
        values.append(ns)
        categories.append("kthread")
    bars = {"names": names, "values": values, "categories": categories, "labels": [format_ns(ns) for ns in values]}
    trap_share = round(100 * cpu.get(("system", "trap"), 0) / system) if system else 0
    off_cpu = latency.off_cpu_at(step, t_ns)
    asleep = {kind: off_cpu.get(kind, 0) for kind in ("syscall", "trap")}
    answer, *details = _answer(wall, counts, system, trap_share, asleep, kthreads, idle, disk_wait, kthread_wait)
    return LatencyView(
        bars=bars,
        user_ns=cpu.get(("user", ""), 0),
        system_ns=system,
        syscall_ns=wall["syscall"],
        trap_ns=wall["trap"],
        syscalls=counts["syscall"],
        traps=counts["trap"],
        kthread_ns=sum(ns for _, ns in kthreads),
        idle_ns=idle,
        disk_wait_ns=disk_wait,
        answer=answer,
        detail=" ".join(details),
    )


def _answer(
    wall: dict[str, int],
    counts: dict[str, int],
    system: int,
    trap_share: int,
    asleep: dict[str, int],
    kthreads: list[tuple[str, int]],
    idle: int,
    disk_wait: int,
    kthread_wait: int,
) -> list[str]:
    """The lecture's question answered: the program's system time as time(1) reports it and where it went as
    DTrace would time it; then, sentence by sentence, the time that was not the program's."""
    if not system and not kthreads and not idle and not disk_wait:
        return ["No time in the kernel yet."]
    new = counts["start"]
    started = f"; {format_ns(wall['start'])} starting {new:,} new thread{'s' * (new != 1)} (fork_exit)" if new else ""
    sentences = [
        f"So far the kernel has run {format_ns(system)} for this program: its system time, as time(1) reports it. "
        f"Timed from kernel entry to exit, as DTrace's timestamp would, {format_ns(wall['syscall'])} went inside "
        f"{counts['syscall']:,} system call{'s' * (counts['syscall'] != 1)} and {format_ns(wall['trap'])} in "
        f"{counts['trap']:,} trap{'s' * (counts['trap'] != 1)} outside them "
        f"({trap_share}% of system time){started}."
    ]
    if asleep["syscall"]:
        sentences.append(
            f"The system calls' time includes {format_ns(asleep['syscall'])} their threads spent off the CPU (asleep "
            "on the disk, a timer or a child, or waiting while another thread ran): wall time, but not system time."
        )
    if asleep["trap"]:
        sentences.append(
            f"The traps' time includes {format_ns(asleep['trap'])} waiting for the disk (the pager of a hard fault, "
            "or of the page it swapped out to make room), off the CPU: wall time, but not system time."
        )
    if kthread_wait:
        sentences.append(f"Kernel threads waited {format_ns(kthread_wait)} for the disk (the pager), off the CPU.")
    if kthreads:
        who = ", ".join(f"{comm} {format_ns(ns)}" for comm, ns in kthreads)
        sentences.append(f"Kernel threads ran {format_ns(sum(ns for _, ns in kthreads))} ({who}), not this program.")
    if idle:
        sentences.append(f"The CPU idled {format_ns(idle)} (cpu_idle: halted, nobody's system time).")
    return sentences
