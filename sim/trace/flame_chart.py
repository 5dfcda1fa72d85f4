"""A flame chart: the run's frames in time order, as speedscope's "Time Order" view and flamegraph.pl --flamechart
draw them (never merged across time; a frame is as wide as the stretch it stayed open on the CPU).

It is made from the same on-CPU slices as the exact-times flame graph (sim/trace/flame.py `timeline`), and x is
on-CPU time: the slices laid end to end, the idle CPU's halts left out as the graph leaves them out (write-file's
run is 31 s long, of which its processes spend microseconds on the CPU). So the chart is as wide as the graph,
and the widths of one stack's frames add up to that stack's value in it. A frame at depth d is a run of
consecutive slices of one thread whose stacks share their first d + 1 frames; each frame keeps the simulated time
it began at.

A run of dd has some 50,000 slices and tens of thousands of frames; `visible` picks those a view of some width
can show (wider than a fraction of a pixel, inside the time range), with their ancestors, so the browser asks for
the frames of the range it shows as it zooms.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from sim.run import Run
from sim.trace.flame import Stack, timeline

MAX_VISIBLE_FRAMES = 6000
MAX_MERGED_NAMES = 3  # a merged block is named after its first frames' names, then MORE
MORE = "…"  # frames sent for one view; past this the narrowest wait for a closer zoom


@dataclass(frozen=True)
class ChartFrame:
    start_ns: int  # on-CPU time: the ns of the run's on-CPU slices before this frame began
    end_ns: int
    at_ns: int  # the simulated time it began at
    stack: Stack  # root first; the frame is stack[-1], at depth len(stack) - 1
    tid: int

    @property
    def depth(self) -> int:
        return len(self.stack) - 1

    @property
    def width(self) -> int:
        return self.end_ns - self.start_ns


@dataclass
class FlameChart:
    frames: list[ChartFrame]  # sorted by start, then depth (a parent before its children)
    start_ns: int
    end_ns: int

    def __post_init__(self) -> None:
        # the latest end of the frames up to each index (non-decreasing): every frame before the first index
        # whose value passes a range's start ends before that range, so a bisection skips them
        latest, running = 0, []
        for frame in self.frames:
            latest = max(latest, frame.end_ns)
            running.append(latest)
        self._latest_end = running

    def visible(self, start_ns: int, end_ns: int, width_px: int, min_px: float = 0.5) -> list[Shown]:
        """What a view of [start_ns, end_ns] `width_px` wide shows: each frame at least `min_px` wide, and at
        each depth the runs of narrower frames closer than that to each other merged into one block (as the ring
        timeline merges stretches closer than a pixel), so a thousand page faults show as one block that says
        so rather than as nothing. At most MAX_VISIBLE_FRAMES, the widest kept."""
        min_width = max(end_ns - start_ns, 1) * min_px / max(width_px, 1)
        shown: list[Shown] = []
        pending: dict[int, Shown] = {}  # depth -> the block of narrow frames being merged
        for frame in self.frames[bisect_right(self._latest_end, start_ns) :]:
            if frame.start_ns >= end_ns:
                break
            if frame.end_ns <= start_ns:
                continue
            depth = frame.depth
            block = pending.get(depth)
            if frame.width >= min_width:
                shown.append(Shown(frame.start_ns, frame.end_ns, frame.stack, frame.at_ns, 1, frame.width))
                continue
            if block is not None and frame.start_ns - block.end_ns <= min_width:
                block.merge(frame)
                continue
            if block is not None and block.width >= min_width:
                shown.append(block)
            pending[depth] = Shown(frame.start_ns, frame.end_ns, frame.stack, frame.at_ns, 1, frame.width)
        shown.extend(block for block in pending.values() if block.width >= min_width)
        if len(shown) > MAX_VISIBLE_FRAMES:
            narrowest = sorted((f.width for f in shown), reverse=True)[MAX_VISIBLE_FRAMES - 1]
            shown = [f for f in shown if f.width > narrowest]
        return shown


@dataclass
class Shown:
    """A frame as a view shows it, or a block of `count` frames each too narrow to show, merged: `stack` is the
    first one's, with its last frame named after all of theirs when they differ; `busy_ns` the time they cover."""

    start_ns: int
    end_ns: int
    stack: Stack
    at_ns: int
    count: int
    busy_ns: int

    @property
    def width(self) -> int:
        return self.end_ns - self.start_ns

    def merge(self, frame: ChartFrame) -> None:
        self.end_ns = frame.end_ns
        self.count += 1
        self.busy_ns += frame.width
        names = self.stack[-1].split(" | ")
        if frame.stack[-1] not in names and names[-1] != MORE:
            names.append(frame.stack[-1] if len(names) < MAX_MERGED_NAMES else MORE)
            self.stack = (*self.stack[:-1], " | ".join(names))


def flame_chart(run: Run) -> FlameChart:
    """The run's frames in time order (one frame per stretch a thread kept a stack prefix on the CPU)."""
    frames: list[ChartFrame] = []
    open_frames: list[list] = []  # per depth: [start, end, at, stack, tid] of the frame still growing
    cpu_ns = 0
    for piece in timeline(run):
        start, end = cpu_ns, cpu_ns + piece.end_ns - piece.start_ns
        cpu_ns = end
        keep = 0
        for depth, (_, _, _, stack, tid) in enumerate(open_frames):
            if depth >= len(piece.stack) or tid != piece.tid or stack != piece.stack[: depth + 1]:
                break
            keep = depth + 1
        frames.extend(ChartFrame(*frame) for frame in reversed(open_frames[keep:]))
        del open_frames[keep:]
        for open_frame in open_frames:
            open_frame[1] = end
        for depth in range(keep, len(piece.stack)):
            open_frames.append([start, end, piece.start_ns, piece.stack[: depth + 1], piece.tid])
    frames.extend(ChartFrame(*frame) for frame in reversed(open_frames))
    frames.sort(key=lambda f: (f.start_ns, f.depth))
    return FlameChart(frames, 0, cpu_ns)
