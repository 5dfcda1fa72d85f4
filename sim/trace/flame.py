"""Flame graphs from a recorded run: exact frame times from the frame events, or profile samples from DTrace.

A flame graph is a set of *folded stacks*: a stack (root first) and the value spent with exactly that stack on
the CPU (its self value). Two sources, following Brendan Gregg's FlameGraph conventions:

- Exact frame times (`flame_from_run`): every nanosecond of the run is billed to the thread on the CPU and to
  the kernel frames open at that step, as the machine bills it (an event's time is the time its step took). A
  stack starts with the process's name (p_comm, as perf's stackcollapse puts it first); user-mode time is the
  frame `user` above it (`dd;user`), and kernel time sits above the grey separator frame `-` that
  flamegraph.pl draws between user and kernel frames (`dd;-;Xpage;trap;trap_pfault;vm_fault;...`). A step
  that changes ring (syscall, sysretq, a trap's entry, iretq) is kernel time, as time(1) bills it, spent in the
  assembly entry point it enters or leaves. The idle thread's halt (`cpu_idle`) and a pager's disk wait are billed
  to nobody and left out.
  So a process's `user` frame equals its user time and its `-` frame its system time.
- Profile samples (`flame_from_aggregation`): a D aggregation keyed by stack(), e.g. the lecture's
  `profile-997 { @traces[stack()] = count(); }`, folded as stackcollapse.pl folds dtrace's output: frames leaf
  last, `+0x...` offsets stripped, identical stacks summed; other keys become root frames, and an empty kernel
  stack (a sample in user mode) becomes `user`.

`FlameGraph.nodes()` gives the tree (inclusive and self value per stack prefix, siblings sorted by name as
flamegraph.pl sorts them, so two graphs line up), and `differential`
compares two graphs as difffolded.pl does (red: more in the second, blue: less).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from sim.core.events import DiskWait
from sim.core.walker import Walker
from sim.run import Run
from sim.trace.d_output import Aggregation

ROOT = "all"  # flamegraph.pl's root frame: the whole graph
USER_FRAME = "user"  # time spent in user mode (the simulator records no user call stacks)
KERNEL_SEPARATOR = "-"  # flamegraph.pl's grey frame between user and kernel frames
HALT_EVENT = "cpu_idle"  # the idle thread's halt: wall time billed to neither user nor system

DEFAULT_WIDTH_PX = 1200  # flamegraph.pl --width
DEFAULT_MIN_WIDTH_PX = 0.1  # flamegraph.pl --minwidth: frames narrower than this are not drawn

Stack = tuple[str, ...]


class FlameError(ValueError):
    """A flame graph cannot be made from this input; the message says why."""


class Slice(NamedTuple):
    """A stretch of time one thread spent with one stack on the CPU."""

    tid: int
    pid: int
    start_ns: int
    end_ns: int
    stack: Stack  # root first: (comm, "user") or (comm, "-", kernel frames...)
    step: int  # the event that began the stretch


@dataclass(frozen=True)
class FlameNode:
    stack: Stack  # the path from the root's child to this frame (the root itself is ())
    inclusive: int  # this frame and everything above it
    self_value: int  # this frame alone (the time it was the leaf)

    @property
    def name(self) -> str:
        return self.stack[-1] if self.stack else ROOT

    @property
    def depth(self) -> int:
        return len(self.stack)


@dataclass
class FlameGraph:
    stacks: dict[Stack, int]  # folded stacks: root-first stack -> self value (values > 0 only)
    unit: str  # "nanoseconds" (exact times) or "samples" (profile samples) or "none"
    title: str
    first_steps: dict[Stack, int] = field(default_factory=dict)  # stack -> first step it was on the CPU
    complete: bool = True  # False: the run outgrew its recording budget and only its recorded part is here

    @property
    def total(self) -> int:
        return sum(self.stacks.values())

    def value_of(self, prefix: Stack) -> int:
        """The inclusive value of one frame (a stack prefix)."""
        n = len(prefix)
        return sum(v for s, v in self.stacks.items() if s[:n] == prefix)

    def nodes(self) -> list[FlameNode]:
        """Every frame once, depth first from the root, siblings sorted by name (flamegraph.pl's order)."""
        inclusive: dict[Stack, int] = {(): 0}
        for stack, value in self.stacks.items():
            inclusive[()] += value
            for depth in range(1, len(stack) + 1):
                prefix = stack[:depth]
                inclusive[prefix] = inclusive.get(prefix, 0) + value
        children: dict[Stack, list[Stack]] = {}
        for prefix in inclusive:
            if prefix:
                children.setdefault(prefix[:-1], []).append(prefix)
        ordered: list[FlameNode] = []
        pending = [()]
        while pending:
            stack = pending.pop()
            ordered.append(FlameNode(stack, inclusive[stack], self.stacks.get(stack, 0)))
            pending.extend(sorted(children.get(stack, ()), reverse=True))
        return ordered


# --- exact frame times from a run ---------------------------------------------------------------------------


def timeline(run: Run, first_steps: dict[Stack, int] | None = None) -> Iterator[Slice]:
    """The run as consecutive slices of on-CPU time, each with the thread and the stack it was spent in.

    The walker (sim/core/walker.py) gives each step's thread, process, program name and kernel frames; each thread's
    frames are kept here as root-first stacks too (a stack tuple per open frame), so a slice costs no new tuple.
    If `first_steps` is given, it is filled with the first step at which each stack (and each of its prefixes
    that was entered as a frame) was on the CPU, for "open the stepper inside this function".
    """
    events = run.events
    walker = Walker(run.threads, run.initial_registers.get("cpl", 3))
    stacks: dict[int, list[Stack]] = {}  # tid -> the kernel frames it has open, as stacks (root first)
    last_left: dict[int, str] = {}  # tid -> the outermost kernel frame it last returned from
    frames: list[Stack] = []
    tid = pid = 0
    comm = ""
    first = first_steps if first_steps is not None else {}
    prev_t = 0
    current: list = []  # [tid, pid, start, end, stack, step] of the slice being extended
    for i, event in enumerate(events):
        t, kind, name, deltas = event.t_ns, event.kind, event.name, event.deltas
        crossing = 0  # +1: this step enters the kernel, -1: it returns to user mode
        cpl = walker.cpl
        walker.step(event)
        if deltas:
            if walker.cpl != cpl:
                crossing = 1 if walker.cpl == 0 else -1
            if walker.tid != tid:
                tid, pid = walker.tid, walker.pid
                frames = stacks.setdefault(tid, [])
                comm = _comm(walker, tid)
        if kind == "enter":
            stack = (frames[-1] if frames else (comm, KERNEL_SEPARATOR)) + (name,)
            frames.append(stack)
            if stack not in first:
                first[stack] = i
        dt = t - prev_t
        prev_t = t
        if kind == "proc" and name == "sleep" and event.data.__class__ is DiskWait:
            dt -= event.data.ns  # a pager's disk wait ends its step: off the CPU, as a halt is (sim/vm/vm_pager.py)
        if dt > 0 and not (kind == "proc" and name == HALT_EVENT):
            if (crossing or walker.cpl == 0) and not frames:
                # a ring change's step runs in the entry point it enters or leaves: billed there, but the
                # stepper finds that frame at its enter event, not here
                if crossing > 0:
                    stack = _entry_point(events, i, comm)
                elif crossing < 0 and tid in last_left:
                    stack = (comm, KERNEL_SEPARATOR, last_left[tid])
                else:
                    stack = (comm, KERNEL_SEPARATOR)
                    if stack not in first:
                        first[stack] = i
            elif crossing or walker.cpl == 0:
                stack = frames[-1]
            else:
                stack = (comm, USER_FRAME)
                if stack not in first:
                    first[stack] = i
            if current and current[0] == tid and current[4] == stack and current[3] == t - dt:
                current[3] = t
            else:
                if current:
                    yield Slice(*current)
                current = [tid, pid, t - dt, t, stack, i]
        if kind == "exit":
            if len(frames) == 1 and frames[0][-1] == name:
                last_left[tid] = name  # returned from its outermost frame (not unwound past it)
            del frames[len(walker.stack) :]
        elif kind == "proc" or kind == "start":
            del frames[len(walker.stack) :]  # exit1() never returns: the thread's kernel stack is abandoned
            if _comm(walker, tid) != comm:  # exec renamed the process: its threads' open stacks carry the new name
                comm = _comm(walker, tid)
                _rename(stacks, walker, walker.pid)
    if current:
        yield Slice(*current)


def _comm(walker: Walker, tid: int) -> str:
    return walker.comm_of(tid) or f"tid {tid}"


def _entry_point(events: list, i: int, comm: str) -> Stack:
    """A step that enters the kernel runs in the assembly entry point the next frame event enters."""
    for j in range(i + 1, min(i + 8, len(events))):
        if events[j].kind == "enter":
            return (comm, KERNEL_SEPARATOR, events[j].name)
    return (comm, KERNEL_SEPARATOR)


def _rename(stacks: dict[int, list[Stack]], walker: Walker, pid: int) -> None:
    """exec renamed a process while its threads have kernel frames open: their stacks carry the new name."""
    for tid, frames in stacks.items():
        if walker.threads.get(tid, (0, ""))[0] == pid:
            comm = _comm(walker, tid)
            frames[:] = [(comm, *stack[1:]) for stack in frames]


def flame_from_run(run: Run, title: str | None = None) -> FlameGraph:
    """Exact frame times: the ns each stack was on the CPU, for every process of the run."""
    first: dict[Stack, int] = {}
    stacks: dict[Stack, int] = {}
    for piece in timeline(run, first):
        stacks[piece.stack] = stacks.get(piece.stack, 0) + piece.end_ns - piece.start_ns
    return FlameGraph(
        stacks=stacks,
        unit="nanoseconds",
        title=title or f"{run.spec.command} ({run.spec.profile}): on-CPU time by stack",
        first_steps=first,
        complete=run.unrecorded == 0,
    )


def process_times(graph: FlameGraph, comm: str) -> tuple[int, int]:
    """(user, system) ns of the processes named `comm` in an exact-times graph: its `user` and `-` frames."""
    return graph.value_of((comm, USER_FRAME)), graph.value_of((comm, KERNEL_SEPARATOR))


# --- profile samples from a D aggregation -------------------------------------------------------------------

_OFFSET = re.compile(r"\+[^+]*$")  # stackcollapse.pl: s/\+[^+]*$//
SUMMABLE = ("count", "sum")


def collapse_frame(text: str) -> str:
    """One dtrace stack frame as stackcollapse.pl keeps it: ``kernel`pagezero+0x10`` -> ``kernel`pagezero``."""
    return _folded_name(_OFFSET.sub("", text.strip()))


def _folded_name(name: str) -> str:
    """Folded stacks separate frames with ';' and end with ' count': keep both out of a frame's name."""
    return name.replace(";", ":").replace("\n", " ") or KERNEL_SEPARATOR


def flame_from_aggregation(aggregation: Aggregation, title: str | None = None) -> FlameGraph:
    """Fold an aggregation keyed by stack() (count() or sum() values) into a flame graph."""
    name = f"@{aggregation.name}"
    stack_keys = [i for i, t in enumerate(aggregation.key_types) if t.kind == "stack"]
    if not stack_keys:
        raise FlameError(f"{name} is not keyed by stack(): a flame graph needs stacks, e.g. @[stack()] = count()")
    if aggregation.function not in SUMMABLE:
        raise FlameError(
            f"{name} holds {aggregation.function}() values: a flame graph adds values up, so it needs count() or sum()"
        )
    stacks: dict[Stack, int] = {}
    for key, value in aggregation.data.items():
        frames: list[str] = []
        for part in key:
            if isinstance(part, tuple):  # a stack() key: frames leaf first
                folded = [collapse_frame(frame) for frame in reversed(part)]
                frames.extend(folded or [USER_FRAME])
            else:
                frames.append(_folded_name(str(part)))
        stack = tuple(frames)
        value = aggregation.value(value)
        if value > 0:
            stacks[stack] = stacks.get(stack, 0) + value
    unit = "samples" if aggregation.function == "count" else "none"
    return FlameGraph(stacks=stacks, unit=unit, title=title or f"{name}: {aggregation.function}() by stack")


def stack_aggregations(aggregations: dict[str, Aggregation]) -> list[str]:
    """The names of the aggregations a flame graph can be drawn from (keyed by stack(), count or sum)."""
    return [
        name
        for name, agg in aggregations.items()
        if agg.function in SUMMABLE and any(t.kind == "stack" for t in agg.key_types) and agg.data
    ]


# --- differential flame graphs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiffNode:
    stack: Stack
    before: int  # inclusive value in the first graph (scaled when normalised)
    after: int  # inclusive value in the second graph: the width drawn, as flamegraph.pl draws it

    @property
    def delta(self) -> int:
        return self.after - self.before

    @property
    def name(self) -> str:
        return self.stack[-1] if self.stack else ROOT


@dataclass
class FlameDiff:
    before: FlameGraph
    after: FlameGraph
    nodes: list[DiffNode]  # every frame of either graph, depth first, siblings sorted by name
    normalised: bool
    scale: float  # what the first graph's values were multiplied by (1.0 unless normalised)

    @property
    def max_abs_delta(self) -> int:
        return max((abs(node.delta) for node in self.nodes if node.stack), default=0)

    def folded(self) -> str:
        """difffolded.pl's output: `stack before after` per stack of either graph."""
        stacks = sorted(set(self.before.stacks) | set(self.after.stacks))
        return "".join(
            f"{';'.join(s)} {round(self.before.stacks.get(s, 0) * self.scale)} {self.after.stacks.get(s, 0)}\n"
            for s in stacks
        )


def self_changes(diff: FlameDiff) -> list[DiffNode]:
    """The stacks whose own (self) value changed: difffolded's lines that differ, as nodes of self values."""
    stacks = sorted(set(diff.before.stacks) | set(diff.after.stacks))  # in one order, whatever the hash seed
    nodes = (DiffNode(s, round(diff.before.stacks.get(s, 0) * diff.scale), diff.after.stacks.get(s, 0)) for s in stacks)
    return [node for node in nodes if node.delta]


def differential(before: FlameGraph, after: FlameGraph, normalise: bool = False) -> FlameDiff:
    """Compare two graphs frame by frame (difffolded.pl; `normalise` is its -n: scale the first to the second's
    total, so the colours show a change of share rather than of amount)."""
    scale = after.total / before.total if normalise and before.total else 1.0
    merged = FlameGraph(stacks={s: 1 for s in set(before.stacks) | set(after.stacks)}, unit="", title="")
    before_nodes = {node.stack: node.inclusive for node in before.nodes()}
    after_nodes = {node.stack: node.inclusive for node in after.nodes()}
    nodes = [
        DiffNode(node.stack, round(before_nodes.get(node.stack, 0) * scale), after_nodes.get(node.stack, 0))
        for node in merged.nodes()
    ]
    return FlameDiff(before, after, nodes, normalise, scale)


def stack_text(stack: Stack) -> str:
    """A stack as one folded line's stack part (`dd;-;Xpage;trap`); the root is `all`."""
    return ";".join(stack) if stack else ROOT


def parse_stack(text: str) -> Stack:
    """The inverse of stack_text."""
    return () if text in ("", ROOT) else tuple(text.split(";"))
