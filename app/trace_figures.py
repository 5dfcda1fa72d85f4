"""Plotly figures for the trace page: charts of D aggregations. Each is a JSON-ready dict that static/trace.js
hands to Plotly.newPlot. (The flame graphs, the differential one too, are laid out and drawn in the browser,
static/flame.js, from app/flame_view.py's data.)
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from sim.trace.d_output import QUANTIZE_ZEROBUCKET, Aggregation, Buckets, quantize_bucket_value

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Liberation Sans', sans-serif"
FRAME_FONT = "ui-monospace, 'DejaVu Sans Mono', 'Liberation Mono', Menlo, monospace"
TOP_MARGIN_PX = 30
MAX_BARS = 40  # the largest entries of a keyed aggregation that a bar chart shows
MAX_HISTOGRAMS = 6  # quantize() keys drawn, largest first

UNITS = {"nanoseconds": "ns", "samples": "samples", "none": ""}


def _layout(height: int, title: str | None = None) -> dict[str, Any]:
    return dict(
        template="none",
        height=height,
        margin=dict(l=4, r=4, t=36 if title else TOP_MARGIN_PX, b=4),
        title=dict(text=title, x=0, xanchor="left", font=dict(size=15)) if title else None,
        font=dict(family=FONT, size=14, color="#1b1b1b"),
        paper_bgcolor="#ffffff",
        hoverlabel=dict(font=dict(family=FRAME_FONT, size=14)),
        uniformtext=dict(minsize=10, mode="hide"),
    )


def _figure(fig: go.Figure) -> dict[str, Any]:
    figure = fig.to_plotly_json()
    figure["config"] = {"displayModeBar": False, "responsive": True}
    return figure


# --- aggregations -------------------------------------------------------------------------------------------


def key_label(aggregation: Aggregation, key: tuple) -> str:
    """A key as a chart label: its components joined; a stack by its leaf frame."""
    parts = []
    for component, dtype in zip(key, aggregation.key_types, strict=True):
        if dtype.kind == "stack":
            parts.append(component[0] if component else "(user mode)")
        else:
            parts.append(str(component))
    return ", ".join(parts)


def histogram_rows(aggregation: Aggregation, datum: Buckets) -> list[tuple[str, int]]:
    """The rows dtrace prints for a quantize()/lquantize() value: (bucket label, count), one empty bucket
    either side of the non-empty ones."""
    used = datum.used()
    if not used:
        used = [QUANTIZE_ZEROBUCKET if aggregation.function == "quantize" else 1]
    first, last = max(used[0] - 1, 0), min(used[-1] + 1, datum.size - 1)
    return [(_bucket_label(aggregation, i), datum[i]) for i in range(first, last + 1)]


def _bucket_label(aggregation: Aggregation, bucket: int) -> str:
    if aggregation.function == "quantize":
        return str(quantize_bucket_value(bucket))
    if bucket == 0:
        return f"< {aggregation.base}"
    if bucket == aggregation.levels + 1:
        return f">= {aggregation.base + aggregation.levels * aggregation.step}"
    return str(aggregation.base + (bucket - 1) * aggregation.step)


def aggregation_figure(aggregation: Aggregation) -> dict[str, Any] | None:
    """A bar chart of a keyed aggregation, or a histogram per key of a quantize()/lquantize() one; None when
    there is nothing to draw (no entries, or one keyless number that the output already shows)."""
    if not aggregation.data:
        return None
    name = f"@{aggregation.name}"
    if aggregation.function in ("quantize", "lquantize"):
        return _histograms(aggregation, name)
    if not aggregation.key_types:
        return None
    entries = aggregation.sorted_entries()[-MAX_BARS:]  # printa's order, ascending: the largest are last
    labels = [key_label(aggregation, key) for key, _ in entries]
    values = [aggregation.value(datum) for _, datum in entries]
    shown = f" (the {len(entries)} largest of {len(aggregation.data)})" if len(aggregation.data) > len(entries) else ""
    fig = go.Figure(
        go.Bar(
            orientation="h",
            x=values,
            y=labels,
            marker=dict(color="#D55E00"),
            text=[f"{v:,}" for v in values],
            textposition="auto",
            hovertemplate="%{y}: %{x:,}<extra></extra>",
        ),
        layout=_layout(min(120 + 26 * len(entries), 1200), f"{name}: {aggregation.function}(){shown}"),
    )
    fig.update_layout(
        margin=dict(l=8, r=16, t=36, b=36),
        yaxis=dict(type="category", automargin=True, tickfont=dict(family=FRAME_FONT, size=13)),
        xaxis=dict(tickformat=",d", gridcolor="#e5e5e5", automargin=True),
    )
    return _figure(fig)


def _histograms(aggregation: Aggregation, name: str) -> dict[str, Any]:
    entries = aggregation.sorted_entries()[-MAX_HISTOGRAMS:][::-1]
    fig = go.Figure()
    for key, datum in entries:
        rows = histogram_rows(aggregation, datum)  # type: ignore[arg-type]
        label = key_label(aggregation, key) if key else name
        fig.add_trace(
            go.Bar(
                x=[bucket for bucket, _ in rows],
                y=[count for _, count in rows],
                name=label,
                hovertemplate="value ≥ %{x}: %{y:,}<extra>" + label + "</extra>",
            )
        )
    shown = (
        f" (the {len(entries)} largest keys of {len(aggregation.data)})" if len(aggregation.data) > len(entries) else ""
    )
    fig.update_layout(_layout(380, f"{name}: {aggregation.function}(){shown}"))
    fig.update_layout(
        margin=dict(l=8, r=16, t=36, b=8),
        barmode="group",
        showlegend=len(entries) > 1,
        xaxis=dict(type="category", title=dict(text="value (bucket's lower bound)"), automargin=True),
        yaxis=dict(title=dict(text="count"), tickformat=",d", gridcolor="#e5e5e5", automargin=True),
    )
    return _figure(fig)
