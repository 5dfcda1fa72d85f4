"""What the browser's flame graph (static/flame.js) is drawn from: a graph's folded stacks, each frame's kind, and
the run's frames in time order, compact.

The browser lays the stacks out itself (flamegraph.pl's alphabetical order, speedscope's left-heavy order, the
sandwich of one function's callers and callees) and draws each view as Plotly bars, one per frame, x = the frame's
share, so zooming into a frame is a change of the x range: its descendants keep their proportions, as they do in
flamegraph.pl and speedscope. The time-order view asks for the frames of the range it shows (`chart_data`).

Each frame has a kind, so kernel and user frames differ in more than colour (user frames are hatched, the hover
and the frame readout say which ring): p a process (or another key of a D aggregation), u user mode, s
flamegraph.pl's `-` separator, k a kernel function.
"""

from __future__ import annotations

from typing import Any

from sim.trace.flame import KERNEL_SEPARATOR, USER_FRAME, FlameDiff, FlameGraph, Stack
from sim.trace.flame_chart import FlameChart

PROCESS, USER, SEPARATOR, KERNEL = "p", "u", "s", "k"
KIND_NAMES = {
    PROCESS: "process",
    USER: "user mode (ring 3)",
    SEPARATOR: "user/kernel boundary",
    KERNEL: "kernel (ring 0)",
}
EXACT_TIMES_UNIT = "nanoseconds"


def frame_kind(graph_unit: str, stack: Stack, depth: int) -> str:
    """The kind of the frame at `depth` of `stack`.

    Exact frame times (sim/trace/flame.py): the process's name, then `user`, or `-` and kernel functions. A D
    aggregation's stack() frames are ``module`function`` (module `kernel` is the kernel, an entry point's bare
    address too), `user` stands for an empty kernel stack (a sample in user mode), and other keys (execname, say)
    are processes or plain labels."""
    name = stack[depth]
    if name == USER_FRAME:
        return USER
    if name == KERNEL_SEPARATOR:
        return SEPARATOR
    if graph_unit == EXACT_TIMES_UNIT:
        return PROCESS if depth == 0 else KERNEL
    module, tick, function = name.partition("`")
    if not tick:
        return KERNEL if name.startswith("0x") else PROCESS
    return KERNEL if module == "kernel" else USER


class _StackTable:
    """Stacks as the browser reads them: a table of frame names, and per stack its names' indices and kinds."""

    def __init__(self, unit: str) -> None:
        self.unit = unit
        self.names: dict[str, int] = {}

    def row(self, stack: Stack) -> list:
        indices = [self.names.setdefault(name, len(self.names)) for name in stack]
        return [indices, "".join(frame_kind(self.unit, stack, depth) for depth in range(len(stack)))]


def flame_data(graph: FlameGraph) -> dict[str, Any]:
    """The graph as the browser lays it out: per stack (root first) its frames, their kinds (one letter each)
    and its self value."""
    table = _StackTable(graph.unit)
    stacks = [[*table.row(stack), value] for stack, value in sorted(graph.stacks.items())]
    return {"names": list(table.names), "stacks": stacks, "total": graph.total, "kinds": KIND_NAMES}


def diff_data(diff: FlameDiff) -> dict[str, Any]:
    """A differential flame graph as the browser lays it out: the second run's stacks (the widths, as flame_data),
    each of its frames' value in the first run (inclusive, scaled if the diff is normalised), keyed by its stack
    as the browser names it (`;`-joined, the root ""), and the largest change, which the deepest colour stands for."""
    data = flame_data(diff.after)
    data["before"] = {";".join(node.stack): node.before for node in diff.nodes if node.after > 0}
    data["maxChange"] = diff.max_abs_delta
    return data


def chart_data(chart: FlameChart, start_ns: int, end_ns: int, width_px: int) -> dict[str, Any]:
    """The time-order frames a view of [start_ns, end_ns] `width_px` wide shows: per frame its on-CPU start and
    end, its stack (an index into `stacks`, each as flame_data's), the simulated time it began, and how many
    frames it stands for with the time they cover (more than one: narrow frames merged, FlameChart.visible)."""
    table = _StackTable(EXACT_TIMES_UNIT)
    index: dict[Stack, int] = {}
    frames = []
    for frame in chart.visible(start_ns, end_ns, width_px):
        stack = index.setdefault(frame.stack, len(index))
        frames.append([frame.start_ns, frame.end_ns, stack, frame.at_ns, frame.count, frame.busy_ns])
    stacks = [table.row(stack) for stack in index]
    return {"names": list(table.names), "stacks": stacks, "frames": frames, "start": start_ns, "end": end_ns}
