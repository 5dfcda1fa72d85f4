"""Recording speed: 100,000 getpid() calls, with every event recorded, then with recording off.

Reports events recorded per second (issue target: at least 1,000,000) and system calls simulated per second
when the run fast-forwards unrecorded. Best of REPEATS, by wall time (perf_counter) and by CPU time
(process_time: what this process itself used, which other work on a shared machine disturbs less), with the
host calibration (bench/_host.py) to compare runs taken at different loads.
"""

from __future__ import annotations

import time

from bench._host import host_line
from sim.run import RunSpec, record

CALLS = 100_000
REPEATS = 3
TARGET = 1_000_000


def best_of(record_budget: int) -> tuple[float, float, int]:
    walls, cpus = [], []
    for _ in range(REPEATS):
        wall, cpu = time.perf_counter(), time.process_time()
        run = record(RunSpec(f"getpid {CALLS}"), record_budget=record_budget, event_budget=10**9)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        events = len(run.events) + run.unrecorded
        del run
    return min(walls), min(cpus), events


def main() -> None:
    print(host_line())
    wall, cpu, events = best_of(record_budget=10**9)
    print(f"recording on:  {CALLS:,} getpid calls, {events:,} events, best of {REPEATS}: {wall:.2f} s wall, "
          f"{cpu:.2f} s CPU")  # fmt: skip
    print(f"               {events / wall:,.0f} recorded events/s wall, {events / cpu:,.0f} per CPU second "
          f"(target >= {TARGET:,})")  # fmt: skip
    wall, cpu, _ = best_of(record_budget=0)
    print(f"recording off: {CALLS:,} getpid calls, best of {REPEATS}: {wall:.2f} s wall, {cpu:.2f} s CPU")
    print(f"               {CALLS / wall:,.0f} system calls/s, {events / wall:,.0f} events/s wall")


if __name__ == "__main__":
    main()
