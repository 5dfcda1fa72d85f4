"""How fast the host runs plain Python right now, printed beside each benchmark's figures.

The machines that run the benchmarks have 2 cores, often shared with other work, so the same code can measure
twice as slow from one hour to the next. A fixed pure-Python loop timed just before (best of 5) says how fast
the interpreter was going: compare figures taken at similar calibrations, or scale by the ratio.
"""

from __future__ import annotations

import time


def calibration_ms() -> float:
    """Best of 5 timings of 2,000 x sum(range(1000)), in ms (about 15 ms on a fast, idle desktop core)."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(2_000):
            sum(range(1000))
        best = min(best, time.perf_counter() - start)
    return best * 1000


def host_line() -> str:
    return f"host calibration: {calibration_ms():.1f} ms for 2,000 x sum(range(1000)) (best of 5; lower is faster)"
