"""The event log: one flat, ordered record of everything that happened in a run.

Every state change in the simulator goes through a few recording primitives that queue a *delta*; the next
event closes those deltas into itself. A view never reads live simulator objects: it folds deltas (see
sim/replay.py). With recording off (past the run's step budget) events are only counted, so fast-forward costs
almost nothing per event, while time and counters are still kept by the machine.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec


class Event(msgspec.Struct, frozen=True, gc=False):
    """One step. A msgspec Struct the garbage collector never tracks (gc=False): a run holds millions of events and
    they can be in no reference cycle, so no collection needs to walk them (as NamedTuples, every collection did);
    made by its C constructor, without the tuple a NamedTuple is built from."""

    t_ns: int  # simulated time when the step completed
    kind: str  # see EVENT_KINDS
    name: str  # function, instruction, hook or syscall name
    data: object  # the event's facts: a typed payload (sim/core/events.py), a return value, or None; words for people
    # are made from it only by sim/narrative
    deltas: tuple  # the state changes this step made, oldest first
    depth: int  # kernel call depth at this step (for step over / step out)


# What an event kind means; the stepper's narrative and the DTrace providers read these.
EVENT_KINDS = {
    "start": "the run begins",
    "user": "a user-mode instruction or library step",
    "insn": "a privileged or trap instruction (syscall, sysretq, swapgs, iretq, stac, clac)",
    "enter": "a kernel function is entered",
    "exit": "a kernel function returns",
    "hook": "a kernel check or hook that is not a modelled function runs (argument fetch, AST, a copy's error path)",
    "skip": "a hook is skipped: its flag test failed, so it cost only the test",
    "syscall": "a system call is dispatched through sysent",
    "sysret": "a system call's result is set in the trapframe",
    "trap": "a hardware trap or exception is taken",
    "fault": "a page fault is resolved (or not) by the VM system",
    "mem": "memory or page tables change",
    "walk": "the MMU reads one level of the page tables (PML4, PDPT, PD, PT)",
    "tlb": "a TLB lookup hits or misses, or TLB entries are invalidated",
    "proc": "a process or thread is created, switched, or exits",
    "signal": "a signal is posted or delivered",
    "panic": "the kernel panics and the simulated machine halts",
    "end": "the run ends",
}

# Delta tuples, by their first field:
#   ("reg", name, old, new)       a CPU register (including cpl, the current privilege level)
#   ("tf", field, old, new)       a field of the current thread's trapframe
#   ("td", field, old, new)       a field of the current thread (td_retval0, td_errno, td_flags, ...)
#   ("errno", tid, old, new)      the user thread's errno variable, written by libc's cerror
#   ("thread", old_tid, new_tid)  the thread on the CPU changed (the run's first thread, or cpu_switch);
#                                 Run.threads maps a tid to its (pid, command name) for execname/pid/tid
#   ("ktf", field, old, new)      a field of a kernel-mode trapframe (a fault taken inside the kernel)
#   ("pte", entry_pa, old, new)   a page-table entry, by its physical address
#   ("frame", pfn, old, new)      a physical frame's contents (events.FrameContents: a fill byte, a table, data)
#   ("page", pfn, old, new)       a vm_page's state (events.PageState: object, pindex, queue, wired)
#   ("object", id, old, new)      a vm_object (events.ObjectState: type, size, backing object), None = absent
#   ("map", MapKey(vmspace, start), old, new)  a vm_map entry (events.MapEntry: range, protection, flags,
#                                 object), None = absent


class EventBudgetExceeded(Exception):
    """The run took more steps than its budget allows."""

    def __init__(self, budget: int) -> None:
        super().__init__(f"the run exceeded its budget of {budget:,} steps")
        self.budget = budget


class EventLog:
    """Appends events; knows nothing about the views built from it. Also keeps simulated time (`now`)."""

    def __init__(self, record_budget: int, event_budget: int) -> None:
        self.events: list[Event] = []
        self.now = 0  # simulated nanoseconds since the run began
        self.record_budget = record_budget
        self.event_budget = event_budget
        # Read it as a flag: is this event recorded? It is the number of events that may still be recorded, so
        # one decrement per event both counts the budget down and, at 0, turns recording off.
        self.recording = max(record_budget, 0)
        self.unrecorded = 0  # events that happened while recording was off
        self.depth = 0
        self._pending: list[tuple] = []
        # Called as probe_hook(function, "entry" | "return") at each @kfunc frame's fbt probe sites, or None: the
        # probe effect of armed DTrace probes (see kfunc). None costs one attribute test per frame event.
        self.probe_hook: Callable[[str, str], None] | None = None
        # Called as entry_facts(function, arguments) at each @kfunc entry while a D program reads fbt arguments
        # (sim/kern/dtrace_args.py): the enter event's data. None, as probe_hook, costs one attribute test.
        self.entry_facts: Callable[[str, tuple], object] | None = None

    def delta(self, change: tuple) -> None:
        # Hot callers (Cpu.set, Trapframe.set, kfunc) inline this: `if log.recording: log._pending.append(...)`.
        if self.recording:
            self._pending.append(change)

    def emit(self, kind: str, name: str, data: object = None) -> None:
        # The hottest function of the simulator: one Event built by its C constructor; most
        # events change nothing, and share the empty tuple. Copies of this are inlined in kfunc's frame wrapper,
        # kfunc.gate and cpu.register_step (the hot paths): a change here is a change there.
        if self.recording:
            pending = self._pending
            if pending:
                self.events.append(Event(self.now, kind, name, data, tuple(pending), self.depth))
                pending.clear()
            else:
                self.events.append(Event(self.now, kind, name, data, (), self.depth))
            self.recording -= 1  # past the budget (0), recording is off
            return
        self.unrecorded += 1
        if self.unrecorded + self.record_budget > self.event_budget:
            raise EventBudgetExceeded(self.event_budget)

    def stream_to(self, consume: Callable[[Event], None]) -> Tee:
        """Make this a live log: every event goes to `consume` as it happens, up to the event budget, and the first
        record_budget of them are also stored (the stepper's record). Call it before the first event.

        The recorder's hot paths append to `log.events` and count `log.recording` down (EventLog.emit, inlined):
        `events` becomes the tee, and `recording` counts the event budget down instead of the record budget."""
        tee = Tee(consume, self.record_budget)
        self.events = tee  # type: ignore[assignment]
        self.recording = self.record_budget = self.event_budget
        return tee

    @property
    def total(self) -> int:
        """Events that happened, recorded or not."""
        return len(self.events) + self.unrecorded


class Tee:
    """A live log's `events`: hands each event to a consumer and stores the first `keep` of them."""

    __slots__ = ("consume", "stored", "keep", "passed_on")

    def __init__(self, consume: Callable[[Event], None], keep: int) -> None:
        self.consume = consume
        self.stored: list[Event] = []
        self.keep = max(keep, 0)
        self.passed_on = 0  # events the consumer saw and the record did not keep

    def append(self, event: Event) -> None:
        if self.keep:
            self.stored.append(event)
            self.keep -= 1
        else:
            self.passed_on += 1
        self.consume(event)

    def __len__(self) -> int:
        return len(self.stored) + self.passed_on
