"""Rebuild the machine's visible state at any step of a recorded run, from the event log alone.

Step k is the state after event k (step 0 is the run's `start` event). Every `CHECKPOINT_EVERY` steps a
checkpoint keeps a copy of the state, so reaching step k folds at most that many events' deltas: stepping
back is as cheap as stepping forward, and a step answered for one student never replays the whole run.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sim.core.log import Event
from sim.core.walker import ThreadTable, Walker
from sim.kern.ksyms import kernel_symbol
from sim.machine.cpu import KERNEL_CPL
from sim.run import Run

CHECKPOINT_EVERY = 512
# A kernel function's extent, for telling whether a recorded %rip is in it (the simulator's fault and resume
# addresses are at most a few hundred bytes in), and where %rip shows it after a call it made returned.
KERNEL_FUNCTION_SPAN = 0x400
AFTER_A_CALL = 0x20
# Delta kinds that describe big keyed tables (vm_map entries, vm_objects, vm_pages, page-table entries): copying
# them at every checkpoint would cost more than they are worth, so each key keeps its own history instead.
KEYED_KINDS = ("map", "object", "page", "pte")


class StepOutOfRange(IndexError):
    def __init__(self, step: int, last: int) -> None:
        super().__init__(f"step {step} is out of range: this run has steps 0 to {last}")
        self.step, self.last = step, last


@dataclass(frozen=True)
class StepState:
    step: int
    event: Event
    registers: dict[str, int]
    changed_registers: frozenset[str]
    trapframe: dict[str, int]
    changed_trapframe: frozenset[str]
    stack: tuple[str, ...]  # kernel frames, outermost first
    errno: int  # the user thread's errno (libc's TLS variable)
    tid: int  # the thread on the CPU
    rip_before: int = 0  # %rip as the step before showed it (what "was" says when this step moved it)

    @property
    def t_ns(self) -> int:
        return self.event.t_ns

    @property
    def cpl(self) -> int:
        return self.registers["cpl"]


class _State:
    """What the views show, folded from deltas: the registers, each thread's trapframe and the user thread's errno;
    the walker (sim/core/walker.py) gives the thread on the CPU and its kernel stack."""

    __slots__ = ("registers", "trapframes", "errno", "walker", "shown_rip", "rip_before")

    def __init__(self, registers: dict[str, int], threads: ThreadTable) -> None:
        self.registers = dict(registers)
        self.trapframes: dict[int, dict[str, int]] = {0: {}}
        self.errno = 0
        self.walker = Walker(threads, registers["cpl"])
        self.shown_rip = self.rip_before = registers["rip"]  # %rip as this step and the one before show it

    @property
    def trapframe(self) -> dict[str, int]:
        return self.trapframes.setdefault(self.walker.tid, {})

    def copy(self) -> _State:
        other = _State(self.registers, self.walker.threads)
        other.trapframes = {tid: dict(frame) for tid, frame in self.trapframes.items()}
        other.errno = self.errno
        other.walker = self.walker.copy()
        other.shown_rip, other.rip_before = self.shown_rip, self.rip_before
        return other

    def apply(self, event: Event) -> None:
        tid = self.walker.tid  # a trapframe delta is the thread's that was on the CPU when it was written
        for delta in event.deltas:
            kind = delta[0]
            if kind == "reg":
                self.registers[delta[1]] = delta[3]
            elif kind == "tf":
                self.trapframes.setdefault(tid, {})[delta[1]] = delta[3]
            elif kind == "errno":
                self.errno = delta[3]
            elif kind == "thread":
                tid = delta[2]
        self.walker.step(event)
        self.rip_before = self.shown_rip
        self.shown_rip = _shown_rip(self.registers, self.walker.stack, event)


def _kernel_pc(rip: int, cpl: int, stack: Sequence[str], entered: bool) -> int:
    """%rip inside the kernel function running, as a step shows it.

    The simulator moves %rip only at the instructions it models one by one (syscall, the IDT's entry, iretq,
    sysretq); a kernel function's call and return are not such instructions, so the recorded %rip stays where the
    kernel was entered. Shown as it is, it would claim that sys_getpid runs at Xfast_syscall's address: here %rip
    is the innermost frame's own address (kernel_symbol, as its stack shows it) when the recorded one is not in
    that function: its first instruction at the step that calls it, after the call site otherwise.
    """
    if cpl != KERNEL_CPL or not stack:
        return rip
    start = kernel_symbol(stack[-1])
    if start <= rip < start + KERNEL_FUNCTION_SPAN:
        return rip
    return start if entered else start + AFTER_A_CALL


def _shown_rip(registers: dict[str, int], stack: Sequence[str], event: Event) -> int:
    """%rip as the step shows it: what an instruction that writes it wrote, else inside the running function."""
    for delta in event.deltas:
        if delta[0] == "reg" and delta[1] == "rip":
            return registers["rip"]
    entered = event.kind == "enter" and bool(stack) and event.name == stack[-1]
    return _kernel_pc(registers["rip"], registers["cpl"], stack, entered)


def _step_state(step: int, event: Event, state: _State, trapframe: dict[str, int]) -> StepState:
    registers, rip_before = state.registers, state.rip_before
    if state.shown_rip != registers["rip"]:
        registers = {**registers, "rip": state.shown_rip}
    changed = {d[1] for d in event.deltas if d[0] == "reg"}
    if registers["rip"] != rip_before:
        changed.add("rip")
    else:
        changed.discard("rip")
    return StepState(
        step=step,
        event=event,
        registers=registers,
        changed_registers=frozenset(changed),
        trapframe=trapframe,
        changed_trapframe=frozenset(d[1] for d in event.deltas if d[0] == "tf"),
        stack=tuple(state.walker.stack),
        errno=state.errno,
        tid=state.walker.tid,
        rip_before=rip_before,
    )


class Replay:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.events = run.events
        first = _State(run.initial_registers, run.threads)
        first.apply(self.events[0])
        self._checkpoints: list[_State] = [first]
        self._keyed: dict[str, dict[object, tuple[Sequence[int], Sequence[object]]]] | None = None

    @property
    def last_step(self) -> int:
        return len(self.events) - 1

    def state_at(self, step: int) -> StepState:
        if not 0 <= step <= self.last_step:
            raise StepOutOfRange(step, self.last_step)
        state = self._state(step)
        return _step_state(step, self.events[step], state, dict(state.trapframe))

    def states(self) -> Iterator[StepState]:
        """Every step's state, in order, folded once: what a check over a whole run needs."""
        state = _State(self.run.initial_registers, self.run.threads)
        for step, event in enumerate(self.events):
            state.apply(event)
            yield _step_state(step, event, state, state.trapframe)

    def build_checkpoints(self) -> None:
        """Every checkpoint at once (they are otherwise built as far as a step asked for needs)."""
        self._state(self.last_step)

    def _state(self, step: int) -> _State:
        """Copy the checkpoint at or below `step` (checkpoint i is step i * CHECKPOINT_EVERY) and fold forward."""
        index = step // CHECKPOINT_EVERY
        while len(self._checkpoints) <= index:
            built = len(self._checkpoints) - 1
            state = self._checkpoints[-1].copy()
            self._advance(state, built * CHECKPOINT_EVERY, (built + 1) * CHECKPOINT_EVERY)
            self._checkpoints.append(state)
        state = self._checkpoints[index].copy()
        self._advance(state, index * CHECKPOINT_EVERY, step)
        return state

    def _advance(self, state: _State, from_step: int, to_step: int) -> None:
        for event in self.events[from_step + 1 : to_step + 1]:
            state.apply(event)

    def ring_intervals(self) -> list[tuple[int, int, int]]:
        """(start_ns, end_ns, cpl) for each stretch of time spent in one ring."""
        intervals = []
        cpl = self.run.initial_registers["cpl"]
        since = 0
        for event in self.events:
            for delta in event.deltas:
                if delta[0] == "reg" and delta[1] == "cpl":
                    intervals.append((since, event.t_ns, cpl))
                    cpl, since = delta[3], event.t_ns
        intervals.append((since, self.events[-1].t_ns, cpl))
        return [interval for interval in intervals if interval[1] > interval[0]]

    def table_at(self, kind: str, step: int) -> dict:
        """The keyed table that deltas of `kind` (one of KEYED_KINDS) describe after `step`: key -> its latest value.

        ("map", key, old, new) -> MapKey("pid 1000", 0x200000) -> its MapEntry; ("object", id, ...) -> object id
        -> ObjectState; ("page", pfn, ...) -> pfn -> PageState; ("pte", entry_pa, ...) -> entry value. A key
        whose latest value is None (a map entry removed) is left out. One bisect per key ever written.
        """
        if not 0 <= step <= self.last_step:
            raise StepOutOfRange(step, self.last_step)
        if self._keyed is None:
            self._keyed = self._index_keyed()
        table = {}
        for key, (steps, values) in self._keyed.get(kind, {}).items():
            i = bisect_right(steps, step)
            if i and values[i - 1] is not None:
                table[key] = values[i - 1]
        return table

    def _index_keyed(self) -> dict[str, dict[object, tuple[Sequence[int], Sequence[object]]]]:
        keyed: dict[str, dict[object, tuple[list[int], list[object]]]] = {kind: {} for kind in KEYED_KINDS}
        for step, event in enumerate(self.events):
            for delta in event.deltas:
                history = keyed.get(delta[0])
                if history is not None and len(delta) == 4:
                    steps, values = history.setdefault(delta[1], ([], []))
                    if steps and steps[-1] == step:
                        values[-1] = delta[3]  # written twice in one step: the last write stands
                    else:
                        steps.append(step)
                        values.append(delta[3])
        # Kept as tuples: a dd run has ~11,000 keys, and lists would be walked by every full collection for as
        # long as the run is cached, where a tuple of ints (or of untracked events' values) is left alone.
        return {kind: {key: (tuple(s), tuple(v)) for key, (s, v) in history.items()} for kind, history in keyed.items()}
