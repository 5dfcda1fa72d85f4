"""Plotly figures of a recorded run, for static/trapscope.js.

The ring timeline is sent once with the page as a layout (built here with plotly's graph_objects) and compact
data: the times and steps of every ring change and of every syscall, trap and fault, delta-encoded, so that a dd
run's ten thousand ring changes cost tens of kilobytes, not megabytes, and the stretches of ring-0 time that were
not the program's (a kernel thread ran, or the idle thread halted the CPU: app/view_latency.py). The browser turns
them into two lanes of rectangles, the kernel lane cut into the program's, kernel threads' and idle time, and three
rows of markers (static/trapscope.js). A step only moves the cursor (the layout's first
shape) and the window the plot shows (focus_window): three numbers in the step panel's data attributes.

The latency figure's layout is built here too; a step sends only its bars' names and values.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import plotly.graph_objects as go

from app.navigate import LogIndex
from app.view_latency import IDLE, kthread_label
from sim.core.log import Event
from sim.machine.cpu import KERNEL_CPL, USER_CPL

# Okabe-Ito colours, distinguishable with every common colour-vision deficiency; every one also has a label.
USER_COLOUR = "#0072B2"
KERNEL_COLOUR = "#D55E00"
SYSCALL_COLOUR = "#000000"
TRAP_COLOUR = "#CC79A7"
FAULT_COLOUR = "#009E73"
CURSOR_COLOUR = "#111111"
SYSCALL_BAR_COLOUR = "#444444"  # time inside system calls: kernel time, but not the traps' vermillion
KTHREAD_COLOUR = "#ECB68C"  # the kernel's vermillion, lightened: ring 0, but a kernel thread's, not the program's
IDLE_COLOUR = "#8C8C8C"  # the hatching of a halted CPU (idle), on IDLE_FILL
IDLE_FILL = "#F2F2F2"
IDLE_LABEL = "idle (hlt)"
LANES = {USER_CPL: "user · ring 3", KERNEL_CPL: "kernel · ring 0"}
LANE_Y = {USER_CPL: 0.0, KERNEL_CPL: 1.0}  # each lane is a band from y to y + LANE_HEIGHT
LANE_HEIGHT = 0.8
MARK_Y = {"syscall": 2.0, "trap": 2.0, "fault": 2.0}  # the events row above the lanes
CURSOR_SHAPE = 0  # index of the cursor line in layout.shapes
MAX_SYSCALL_LABELS = 60  # past this many, syscall markers keep their hover text but lose their labels
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Liberation Sans', sans-serif"


def _deltas(values: list[int]) -> list[int]:
    previous, out = 0, []
    for value in values:
        out.append(value - previous)
        previous = value
    return out


def _labelled(labels: list[str]) -> dict[str, list]:
    """Labels as a table of the distinct ones and an index into it per item."""
    table: dict[str, int] = {}
    return {"names": list(dict.fromkeys(labels)), "n": [table.setdefault(label, len(table)) for label in labels]}


def _marks(positions: list[int], events: list[Event], names: list[str] | None = None) -> dict[str, Any]:
    labels = names if names is not None else [events[p].name for p in positions]
    return {"t": _deltas([events[p].t_ns for p in positions]), "s": _deltas(positions), **_labelled(labels)}


def timeline_data(
    index: LogIndex, events: list[Event], initial_cpl: int, others: Sequence[tuple[int, int, str]] = ()
) -> dict[str, Any]:
    """The ring changes and the marked events of a run, compact (see the module docstring). `others`: (start_ns,
    end_ns, who) of each stretch that was not the program's (LatencyIndex.off_program_spans)."""
    syscalls = index.syscall_insns
    dispatched = index.positions("syscall")
    syscall_names = []
    for step in syscalls:
        found = LogIndex.next_after(dispatched, step)
        syscall_names.append(events[found].name if found is not None else "syscall")
    ring_cpl = index.ring_cpl
    return {
        "cpl0": initial_cpl,
        "end": events[-1].t_ns,
        "last": index.last_step,
        "changes": {
            "t": _deltas([events[p].t_ns for p in index.ring_changes]),
            "s": _deltas(index.ring_changes),
            "cpl": ring_cpl,
        },
        "marks": {
            "syscall": _marks(syscalls, events, syscall_names),
            "trap": _marks(index.positions("trap"), events),
            "fault": _marks(index.positions("fault"), events),
        },
        "others": _others(others),
        "labels": len(syscalls) <= MAX_SYSCALL_LABELS,
        "style": {
            "user": USER_COLOUR,
            "kernel": KERNEL_COLOUR,
            "kthread": KTHREAD_COLOUR,
            "idle": IDLE_COLOUR,
            "idleFill": IDLE_FILL,
            "syscall": SYSCALL_COLOUR,
            "trap": TRAP_COLOUR,
            "fault": FAULT_COLOUR,
            "laneY": {"user": LANE_Y[USER_CPL], "kernel": LANE_Y[KERNEL_CPL]},
            "laneHeight": LANE_HEIGHT,
            "markY": MARK_Y,
            "laneNames": {"user": LANES[USER_CPL], "kernel": LANES[KERNEL_CPL]},
        },
    }


def _others(spans: Sequence[tuple[int, int, str]]) -> dict[str, Any]:
    """Spans as delta-encoded starts, durations and an index into their labels; `idle` says which label is a halt."""
    return {
        "t": _deltas([start for start, _, _ in spans]),
        "d": [end - start for start, end, _ in spans],
        **_labelled([IDLE_LABEL if who == IDLE else kthread_label(who) for _, _, who in spans]),
        "idle": IDLE_LABEL,
    }


def _plain_layout(**specific: Any) -> go.Layout:
    """What every trapscope figure shares: no template, white ground, the page's font, no legend (every trace
    is labelled where it is drawn)."""
    common = dict(
        template="none",
        font=dict(family=FONT, size=14, color="#222222"),
        showlegend=False,
        plot_bgcolor="#ffffff",
        paper_bgcolor="#ffffff",
    )
    return go.Layout(**{**common, **specific})


@cache
def timeline_layout() -> dict[str, Any]:
    """The timeline's layout and config: lanes labelled on the y axis, time on x, the cursor as shape 0."""
    layout = _plain_layout(
        height=210,
        margin=dict(l=128, r=16, t=8, b=44),
        hovermode="closest",
        hoverdistance=60,
        hoverlabel=dict(font=dict(family=FONT, size=14)),
        xaxis=dict(
            title=dict(text="simulated time (ns)", font=dict(size=14), standoff=4),
            showgrid=True,
            gridcolor="#e5e5e5",
            zeroline=False,
            tickformat=",d",
        ),
        yaxis=dict(
            range=[-0.15, 2.45],
            tickvals=[LANE_Y[USER_CPL] + LANE_HEIGHT / 2, LANE_Y[KERNEL_CPL] + LANE_HEIGHT / 2, MARK_Y["syscall"]],
            ticktext=[LANES[USER_CPL], LANES[KERNEL_CPL], "events"],
            showgrid=False,
            zeroline=False,
            fixedrange=True,
        ),
        shapes=[cursor_shape(0)],
    )
    return {
        "layout": layout.to_plotly_json(),
        "config": {"displayModeBar": False, "responsive": True, "doubleClick": False},
    }


@cache
def latency_layout() -> dict[str, Any]:
    """The latency figure: horizontal bars of time so far per system call and per kind of trap."""
    layout = _plain_layout(
        height=320,
        margin=dict(l=260, r=90, t=8, b=44),
        # SI ticks (100M = 100,000,000 ns) stay short and level at any width; the bars carry ms/µs labels
        xaxis=dict(
            title=dict(text="simulated time so far (ns; k, M = thousand, million)", standoff=6),
            tickformat="~s",
            tickangle=0,
            nticks=6,
            automargin=True,
            gridcolor="#e5e5e5",
        ),
        yaxis=dict(autorange="reversed", automargin=True),
        bargap=0.25,
    )
    return {
        "layout": layout.to_plotly_json(),
        "config": {"displayModeBar": False, "responsive": True, "staticPlot": False},
        "colours": {
            "syscall": SYSCALL_BAR_COLOUR,
            "start": SYSCALL_BAR_COLOUR,
            "trap": KERNEL_COLOUR,
            "other": "#999999",
            "kthread": KTHREAD_COLOUR,
        },
    }


def ring_intervals(index: LogIndex, initial_cpl: int) -> list[tuple[int, int, int]]:
    """(start_ns, end_ns, cpl) for each stretch of time spent in one ring (as Replay.ring_intervals, from the
    index)."""
    times = index.times
    intervals, cpl, since = [], initial_cpl, 0
    for step, new_cpl in zip(index.ring_changes, index.ring_cpl, strict=True):
        intervals.append((since, times[step], cpl))
        cpl, since = new_cpl, times[step]
    intervals.append((since, times[index.last_step], cpl))
    return [interval for interval in intervals if interval[1] > interval[0]]


def focus_window(intervals: list[tuple[int, int, int]], t_ns: int, cpl: int) -> tuple[int, int]:
    """The time range to show around step time `t_ns`: the stretch in ring `cpl` containing it, and the stretches
    before and after it, so the transitions into and out of the current ring are on screen."""
    if not intervals:
        return (0, max(t_ns, 1))
    here = _interval_at(intervals, t_ns, cpl)
    start = intervals[max(here - 1, 0)][0]
    end = intervals[min(here + 1, len(intervals) - 1)][1]
    pad = max(1, (end - start) // 30)
    return (max(0, start - pad), end + pad)


def _interval_at(intervals: list[tuple[int, int, int]], t_ns: int, cpl: int) -> int:
    from bisect import bisect_right

    i = bisect_right(intervals, (t_ns, float("inf"), 0)) - 1
    i = max(0, min(i, len(intervals) - 1))
    for candidate in (i, i - 1, i + 1):  # the stretch containing t in ring cpl; at a boundary, either side
        if 0 <= candidate < len(intervals):
            start, end, ring = intervals[candidate]
            if ring == cpl and start <= t_ns <= end:
                return candidate
    return i


def cursor_shape(t_ns: int) -> dict[str, Any]:
    return dict(
        type="line",
        xref="x",
        yref="paper",
        x0=t_ns,
        x1=t_ns,
        y0=0,
        y1=1,
        line=dict(color=CURSOR_COLOUR, width=2),
    )
