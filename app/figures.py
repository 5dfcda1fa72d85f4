"""Plotly figures of a recorded run, for static/trapscope.js.

The ring timeline is sent once with the page as a layout (built here with plotly's graph_objects) and compact
data: each thread's lane (its stretches in ring 3, ring 0 or halted, app/timeline_lanes.py) and the times and steps
of every syscall, trap and fault, delta-encoded, so that a dd run's ten thousand ring changes cost tens of
kilobytes, not megabytes. The browser turns them into a lane per thread, ring 3 above ring 0, and a row of
markers, with SI time units on the axis (static/trapscope.js). A step only moves the cursor (the layout's first
shape) and, when the cursor leaves the time the plot shows, pans it (focus_window gives the first window): three
numbers in the step panel's data attributes.

The latency figure's layout is built here too; a step sends only its bars' names and values.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import plotly.graph_objects as go

from app.navigate import LogIndex
from app.timeline_lanes import lanes_data, thread_lanes
from sim.core.log import Event

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
    index: LogIndex, events: list[Event], initial_cpl: int, threads: dict[int, tuple[int, str]]
) -> dict[str, Any]:
    """Each thread's lane (app/timeline_lanes.py) and the marked events of a run, compact (see the module
    docstring)."""
    syscalls = index.syscall_insns
    dispatched = index.positions("syscall")
    syscall_names = []
    for step in syscalls:
        found = LogIndex.next_after(dispatched, step)
        syscall_names.append(events[found].name if found is not None else "syscall")
    return {
        "end": events[-1].t_ns,
        "last": index.last_step,
        "lanes": lanes_data(thread_lanes(index, events, initial_cpl, threads)),
        "marks": {
            "syscall": _marks(syscalls, events, syscall_names),
            "trap": _marks(index.positions("trap"), events),
            "fault": _marks(index.positions("fault"), events),
        },
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
            "idleLabel": IDLE_LABEL,
        },
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
        margin=dict(l=62, r=12, t=8, b=44),
        hovermode="closest",
        hoverdistance=60,
        hoverlabel=dict(font=dict(family=FONT, size=14)),
        # the ticks (SI units chosen by the range shown) and the lanes' rows are set by static/trapscope.js
        xaxis=dict(
            title=dict(text="simulated time", font=dict(size=14), standoff=4),
            showgrid=True,
            gridcolor="#e5e5e5",
            zeroline=False,
            tickangle=0,
            tickmode="array",
        ),
        yaxis=dict(showgrid=False, zeroline=False, fixedrange=True, tickfont=dict(size=12), ticklabelstandoff=8),
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
    before and after it, so the transitions into and out of the current ring are on screen. A neighbour is cut to
    twice the stretch or the other neighbour's length, whichever is more: after getpid's sysretq the next stretch
    is exit()'s whole teardown, and the window would jump from 0-905 ns to 0-74,716 ns between two steps."""
    if not intervals:
        return (0, max(t_ns, 1))
    here = _interval_at(intervals, t_ns, cpl)
    before, after = intervals[max(here - 1, 0)], intervals[min(here + 1, len(intervals) - 1)]
    length = intervals[here][1] - intervals[here][0]
    start = max(before[0], intervals[here][0] - max(2 * length, after[1] - after[0]))
    end = min(after[1], intervals[here][1] + max(2 * length, before[1] - before[0]))
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
