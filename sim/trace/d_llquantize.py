"""llquantize()'s log-linear histograms: which bucket a value falls in, how the histogram prints and sorts.

Each order of magnitude from factor**low to factor**(high + 1) is split into `nsteps` linear buckets (fewer where
the magnitude holds fewer integers), below it one bucket for every smaller value, above it one for every larger
value. The bucket a value falls in is the kernel's dtrace_aggregate_llquantize_bucket(); the histogram prints as
libdtrace's dt_print_llquantize() prints it, and sorts by dt_aggregate_llquantizedsum(). Its parameters are checked
by d_quantize.py.
"""

from __future__ import annotations

from typing import NamedTuple

INT64_MAX = (1 << 63) - 1


class Params(NamedTuple):
    factor: int
    low: int
    high: int
    nsteps: int


def bucket(p: Params, value: int) -> int:
    """dtrace_aggregate_llquantize_bucket(): 0 below factor**low, then the linear steps of each magnitude."""
    this = p.factor**p.low
    if value < this:
        return 0
    last, base, order = this, 1, p.low
    this *= p.factor
    while order <= p.high:
        buckets = min(this, p.nsteps)
        following = this * p.factor
        if following > INT64_MAX:  # the kernel's int64_t product overflowed: clamp the value
            value = this - 1
        if value < this:
            return base + (value - last) // (this // buckets)
        base += buckets - buckets // p.factor
        last, this = this, following
        order += 1
    return base


def bucket_count(p: Params) -> int:
    """The buckets an llquantize() aggregation has: the top one's index plus one."""
    return bucket(p, INT64_MAX) + 1


def _rows(p: Params):
    """(bucket index, value) of each linear bucket in order, as dt_print_llquantize walks them; then the value the
    top bucket starts at."""
    value = p.factor**p.low
    following = value * p.factor
    step = following // p.nsteps if following > p.nsteps else 1
    order, index, rows = p.low, 1, []
    while order <= p.high:
        rows.append((index, value))
        index += 1
        value += step
        if value != following:
            continue
        following = value * p.factor
        step = following // p.nsteps if following > p.nsteps else 1
        order += 1
    return rows, value


def weighted_sum(p: Params, data) -> int:
    """dt_aggregate_llquantizedsum(): each bucket's count times its value (what sorts llquantize entries)."""
    rows, top = _rows(p)
    lowest = p.factor**p.low
    return data[0] * (lowest - 1) + sum(data[i] * v for i, v in rows) + data[len(rows) + 1] * top


def render(p: Params, data, quantline, histogram_header) -> str:
    """dt_print_llquantize(): rows from one below the first non-empty bucket to one above the last."""
    levels = bucket_count(p)
    used = data.used()
    if not used:
        first, last = 0, 1
    else:
        first, last = max(used[0] - 1, 0), min(used[-1] + 1, levels - 1)
    shown = [data[i] for i in range(first, last + 1)]
    positives, negatives = any(v > 0 for v in shown), any(v < 0 for v in shown)
    total = sum(abs(v) for v in shown)
    out = [histogram_header()]
    if first == 0:
        out.append("%16s " % f"< {p.factor**p.low}")  # noqa: UP031 - dt_print_llquantize's format
        out.append(quantline(data[0], total, positives, negatives))
    rows, top = _rows(p)
    for index, value in rows:
        if first <= index <= last:
            out.append("%16d " % value)  # noqa: UP031
            out.append(quantline(data[index], total, positives, negatives))
    if last == len(rows) + 1:
        out.append("%16s " % f">= {top}")  # noqa: UP031
        out.append(quantline(data[last], total, positives, negatives))
    return "".join(out)
