"""Lab 2's buffer-size sweep: `ipc-static -i pipe|local -b SIZE 2thread` at 11 sizes from 32 B to 16 MiB on the
beaglebone profile (the lab's 16 MiB total by default; a smaller --total is raised to a point's buffer size,
which the total must be a multiple of), recording off, as the lab page would run it.

Prints, per point, the bandwidth the program reports (a simulated figure: the same every time) and the host's
wall and CPU time to simulate it, then the sweep's total. A point past its run's event budget is reported as
refused, with the time it took to be refused.

    python -m bench.ipc_sweep [--ipc pipe|local] [--total BYTES] [--profile NAME]
"""

from __future__ import annotations

import argparse
import time

from bench._host import host_line
from sim.run import RunError, RunSpec, record

SIZES = (32, 128, 512, 2 << 10, 8 << 10, 32 << 10, 128 << 10, 512 << 10, 2 << 20, 8 << 20, 16 << 20)


def point(ipc: str, size: int, total: int, profile: str) -> tuple[str, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    total = max(total, size)
    try:
        run = record(RunSpec(f"ipc-static -i {ipc} -b {size} -t {total} 2thread", profile=profile), record_budget=0)
        shown = f"{float(run.output.split()[0]) / 1024:9.1f} MiB/s" if run.exit_status == 0 else "failed"
    except RunError as error:
        shown = f"refused: {error}"
    return shown, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ipc", choices=("pipe", "local"), default="pipe")
    parser.add_argument("--total", type=int, default=16 << 20)
    parser.add_argument("--profile", default="beaglebone")
    args = parser.parse_args()
    print(host_line())
    print(f"ipc-static -i {args.ipc} -t {args.total} 2thread on the {args.profile} profile, recording off")
    walls = cpus = 0.0
    for size in SIZES:
        shown, wall, cpu = point(args.ipc, size, args.total, args.profile)
        walls, cpus = walls + wall, cpus + cpu
        print(f"  -b {size:>9,}: {shown:<16}  {wall:6.2f} s wall, {cpu:6.2f} s CPU", flush=True)
    print(f"sweep of {len(SIZES)} points: {walls:.1f} s wall, {cpus:.1f} s CPU")


if __name__ == "__main__":
    main()
