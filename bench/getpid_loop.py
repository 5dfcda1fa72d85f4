"""Recording speed: 100,000 getpid() calls, with every event recorded, then with recording off.

Reports events recorded per second (issue target: at least 1,000,000) and system calls simulated per second
when the run fast-forwards unrecorded. Best of three, so a busy machine shows its best case.
"""

from __future__ import annotations

import time

from sim.run import RunSpec, record

CALLS = 100_000
REPEATS = 3


def best_of(record_budget: int) -> tuple[float, int]:
    timings = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        run = record(RunSpec(f"getpid {CALLS}"), record_budget=record_budget, event_budget=10**9)
        timings.append(time.perf_counter() - start)
        events = len(run.events) + run.unrecorded
        del run
    return min(timings), events


def main() -> None:
    recorded_s, events = best_of(record_budget=10**9)
    print(f"recording on:  {CALLS:,} getpid calls, {events:,} events in {recorded_s:.2f} s")
    print(f"               {events / recorded_s:,.0f} recorded events/s (target >= 1,000,000)")
    fast_s, _ = best_of(record_budget=1)
    print(f"recording off: {CALLS:,} getpid calls in {fast_s:.2f} s")
    print(f"               {CALLS / fast_s:,.0f} system calls/s, {events / fast_s:,.0f} events/s")


if __name__ == "__main__":
    main()
