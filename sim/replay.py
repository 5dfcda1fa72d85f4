"""Rebuild the machine's visible state at any step of a recorded run, from the event log alone.

Step k is the state after event k (step 0 is the run's `start` event). Every `CHECKPOINT_EVERY` steps a
checkpoint keeps a copy of the state, so reaching step k folds at most that many events' deltas: stepping
back is as cheap as stepping forward, and a step answered for one student never replays the whole run.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.log import Event
from sim.run import Run

CHECKPOINT_EVERY = 512


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

    @property
    def t_ns(self) -> int:
        return self.event.t_ns

    @property
    def cpl(self) -> int:
        return self.registers["cpl"]


class _State:
    __slots__ = ("registers", "trapframe", "stack", "errno", "tid")

    def __init__(self, registers: dict[str, int]) -> None:
        self.registers = dict(registers)
        self.trapframe: dict[str, int] = {}
        self.stack: list[str] = []
        self.errno = 0
        self.tid = 0

    def copy(self) -> _State:
        other = _State(self.registers)
        other.trapframe = dict(self.trapframe)
        other.stack = list(self.stack)
        other.errno = self.errno
        other.tid = self.tid
        return other

    def apply(self, event: Event) -> None:
        for delta in event.deltas:
            kind = delta[0]
            if kind == "reg":
                self.registers[delta[1]] = delta[3]
            elif kind == "tf":
                self.trapframe[delta[1]] = delta[3]
            elif kind == "errno":
                self.errno = delta[3]
            elif kind == "thread":
                self.tid = delta[2]
        if event.kind == "enter":
            self.stack.append(event.name)
        elif event.kind == "exit":
            if self.stack and self.stack[-1] == event.name:
                self.stack.pop()
        elif event.kind == "proc" and event.name == "exit":
            self.stack.clear()  # exit1() never returns: the thread's kernel stack is abandoned


class Replay:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.events = run.events
        first = _State(run.initial_registers)
        first.apply(self.events[0])
        self._checkpoints: list[_State] = [first]

    @property
    def last_step(self) -> int:
        return len(self.events) - 1

    def state_at(self, step: int) -> StepState:
        if not 0 <= step <= self.last_step:
            raise StepOutOfRange(step, self.last_step)
        state = self._state(step)
        event = self.events[step]
        return StepState(
            step=step,
            event=event,
            registers=state.registers,
            changed_registers=frozenset(d[1] for d in event.deltas if d[0] == "reg"),
            trapframe=state.trapframe,
            changed_trapframe=frozenset(d[1] for d in event.deltas if d[0] == "tf"),
            stack=tuple(state.stack),
            errno=state.errno,
            tid=state.tid,
        )

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
