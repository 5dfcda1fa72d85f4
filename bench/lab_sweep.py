"""The IPC lab's sweep: each of the six basic modes over the lab's 11 buffer sizes (32 B to 16 MiB), as /lab runs
it point by point (app/lab.py measure: one run each, nothing recorded, the benchmark's loops replayed once steady).
Target: each mode's whole sweep under 60 s on the course's machine, the 32-byte point included. Wall and CPU time
per point and per mode, with the host calibration (bench/_host.py) to compare runs taken at different loads.
"""

from __future__ import annotations

import time

from app import lab
from bench._host import host_line

TARGET_S = 60


def main() -> None:
    print(host_line())
    for mode in lab.MODES:
        ipc, benchmark_mode = mode.split()
        wall_total = cpu_total = 0.0
        for size in lab.BUFFER_SIZES:
            wall, cpu = time.perf_counter(), time.process_time()
            measured = lab.measure(lab.Point(ipc, benchmark_mode, size, "lecture"))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            wall_total, cpu_total = wall_total + wall, cpu_total + cpu
            shown = (f"{measured['bandwidth_kib_s']:>14,.2f} KiB/s, {measured['events']:>11,} steps"
                     if "refused" not in measured else f"refused: {measured['refused']}")  # fmt: skip
            print(f"{mode} -b {size:>8}: {shown}, {wall:6.2f} s wall, {cpu:6.2f} s CPU", flush=True)
        print(f"{mode} sweep: {wall_total:.1f} s wall, {cpu_total:.1f} s CPU (target < {TARGET_S} s)", flush=True)


if __name__ == "__main__":
    main()
