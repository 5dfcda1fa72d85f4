"""Plotly figures built from a recorded run, as plain JSON-ready dicts for static/trapscope.js.

The ring timeline is built once per run and sent once with the page; a step only moves its cursor (the first
shape of the layout, CURSOR_SHAPE) and the window the main plot shows (focus_window), so a step's fragment carries
three numbers, not a figure. Double-clicking the plot shows the whole run (Plotly's autorange).
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from sim.log import Event
from sim.machine.cpu import KERNEL_CPL, USER_CPL

# Okabe-Ito colours, distinguishable with every common colour-vision deficiency; lanes are also labelled.
USER_COLOUR = "#0072B2"
KERNEL_COLOUR = "#D55E00"
CURSOR_COLOUR = "#111111"
LANES = {USER_CPL: "user · ring 3", KERNEL_CPL: "kernel · ring 0"}
CURSOR_SHAPE = 0  # index of the cursor line in layout.shapes
MAX_SYSCALL_LABELS = 40  # past this many, syscall markers keep their hover text but lose their labels
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Liberation Sans', sans-serif"


def ring_timeline(intervals: list[tuple[int, int, int]], events: list[Event], cursor_ns: int = 0) -> dict[str, Any]:
    """User and kernel lanes of horizontal bars against simulated time, syscalls marked, a cursor line.

    `intervals` are Replay.ring_intervals(): (start_ns, end_ns, cpl) for each stretch of time in one ring.
    """
    fig = go.Figure()
    for cpl, colour in ((USER_CPL, USER_COLOUR), (KERNEL_CPL, KERNEL_COLOUR)):
        spans = [(start, end) for start, end, ring in intervals if ring == cpl]
        fig.add_trace(
            go.Bar(
                orientation="h",
                name=LANES[cpl],
                y=[LANES[cpl]] * len(spans),
                base=[start for start, _ in spans],
                x=[end - start for start, end in spans],
                marker=dict(color=colour, line=dict(width=0)),
                customdata=[end - start for start, end in spans],
                # %{x} of a bar drawn from a base is where it ends
                hovertemplate="%{base:,} – %{x:,} ns: %{customdata:,} ns<extra>%{y}</extra>",
            )
        )
    syscalls = [event for event in events if event.kind == "syscall"]
    fig.add_trace(
        go.Scatter(
            name="system calls",
            x=[event.t_ns for event in syscalls],
            y=[LANES[KERNEL_CPL]] * len(syscalls),
            mode="markers+text" if len(syscalls) <= MAX_SYSCALL_LABELS else "markers",
            text=[event.name for event in syscalls],
            textposition="top center",
            textfont=dict(size=13, color=CURSOR_COLOUR),
            marker=dict(symbol="diamond", size=9, color=CURSOR_COLOUR),
            hovertemplate="%{text}() dispatched at %{x:,} ns<extra>system call</extra>",
        )
    )
    fig.update_layout(
        template="none",
        height=190,
        margin=dict(l=120, r=16, t=8, b=44),
        font=dict(family=FONT, size=14, color="#222222"),
        showlegend=False,
        barmode="overlay",
        bargap=0.35,
        plot_bgcolor="#ffffff",
        paper_bgcolor="#ffffff",
        hoverlabel=dict(font=dict(family=FONT, size=14)),
        xaxis=dict(
            title=dict(text="simulated time (ns)", font=dict(size=14), standoff=4),
            range=list(focus_window(intervals, cursor_ns, USER_CPL)),
            showgrid=True,
            gridcolor="#e5e5e5",
            zeroline=False,
            tickformat=",d",
        ),
        yaxis=dict(
            categoryorder="array",
            categoryarray=[LANES[KERNEL_CPL], LANES[USER_CPL]],
            showgrid=False,
            fixedrange=True,
        ),
        shapes=[cursor_shape(cursor_ns)],
    )
    figure = fig.to_plotly_json()
    figure["config"] = {"displayModeBar": False, "responsive": True}
    return figure


def focus_window(intervals: list[tuple[int, int, int]], t_ns: int, cpl: int) -> tuple[int, int]:
    """The time range to show around step time `t_ns`: the stretch in ring `cpl` containing it, and the stretches
    before and after it, so the transitions into and out of the current ring are on screen."""
    if not intervals:
        return (0, max(t_ns, 1))
    here = next(
        (i for i, (start, end, ring) in enumerate(intervals) if ring == cpl and start <= t_ns <= end),
        next((i for i, (start, end, _) in enumerate(intervals) if start <= t_ns <= end), len(intervals) - 1),
    )
    start = intervals[max(here - 1, 0)][0]
    end = intervals[min(here + 1, len(intervals) - 1)][1]
    pad = max(1, (end - start) // 30)
    return (max(0, start - pad), end + pad)


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
